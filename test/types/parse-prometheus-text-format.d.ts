// The package ships no types; the part the tests use.
declare module 'parse-prometheus-text-format' {
  export interface Sample {
    readonly labels?: Record<string, string>;
    readonly value: string;
  }
  export interface MetricFamily {
    readonly name: string;
    readonly help: string;
    readonly type: string;
    readonly metrics: readonly Sample[];
  }
  export default function parsePrometheusTextFormat(text: string): MetricFamily[];
}
