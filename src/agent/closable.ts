/** Something the daemon must close on the way out (`keepLease`: after a handover, see ControlPlane.close). */
export interface Closable {
  close(opts?: { keepLease?: boolean }): Promise<void> | void;
}
