package testenv

import (
	"context"
	"sync"
	"testing"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// MetricPoint is one data point of an instrument as a test sees it: a
// gauge's or sum's value, or a histogram's count and sum.
type MetricPoint struct {
	Attrs map[string]string
	Value float64 // gauges and sums; a histogram's sum
	Count uint64  // histograms
}

var metricReader = sync.OnceValue(func() *sdkmetric.ManualReader {
	r := sdkmetric.NewManualReader()
	otel.SetMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(r)))
	return r
})

// Metrics installs, once per test binary, a global meter provider read on
// demand (instruments created earlier through otel.Meter are delegated to
// it), collects it and returns the data points of the instrument name whose
// attributes include every pair of match.
func Metrics(t testing.TB, name string, match map[string]string) []MetricPoint {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := metricReader().Collect(context.Background(), &rm); err != nil {
		t.Fatalf("collecting metrics: %v", err)
	}
	var out []MetricPoint
	add := func(set attribute.Set, p MetricPoint) {
		p.Attrs = map[string]string{}
		for _, kv := range set.ToSlice() {
			p.Attrs[string(kv.Key)] = kv.Value.String()
		}
		for k, v := range match {
			if p.Attrs[k] != v {
				return
			}
		}
		out = append(out, p)
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			switch d := m.Data.(type) {
			case metricdata.Gauge[int64]:
				for _, dp := range d.DataPoints {
					add(dp.Attributes, MetricPoint{Value: float64(dp.Value)})
				}
			case metricdata.Gauge[float64]:
				for _, dp := range d.DataPoints {
					add(dp.Attributes, MetricPoint{Value: dp.Value})
				}
			case metricdata.Sum[int64]:
				for _, dp := range d.DataPoints {
					add(dp.Attributes, MetricPoint{Value: float64(dp.Value)})
				}
			case metricdata.Sum[float64]:
				for _, dp := range d.DataPoints {
					add(dp.Attributes, MetricPoint{Value: dp.Value})
				}
			case metricdata.Histogram[float64]:
				for _, dp := range d.DataPoints {
					add(dp.Attributes, MetricPoint{Value: dp.Sum, Count: dp.Count})
				}
			case metricdata.Histogram[int64]:
				for _, dp := range d.DataPoints {
					add(dp.Attributes, MetricPoint{Value: float64(dp.Sum), Count: dp.Count})
				}
			}
		}
	}
	return out
}

// InstallMetrics installs the test meter provider now, before any code
// under test creates instruments (see Metrics).
func InstallMetrics() { metricReader() }
