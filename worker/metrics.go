package worker

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// MetricsHandler serves a worker process's Prometheus metrics: the process
// collector (CPU seconds, resident memory, open files), the Go collector
// (goroutines, heap, GC) and kiln_worker_info{task_queue}. The monitor's
// judgements are exported by the local page (internal/site), which reads
// them from the registry.
func MetricsHandler(taskQueue string) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), collectors.NewGoCollector())
	info := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "kiln_worker_info", Help: "A Kiln worker and the task queue it polls (always 1)."}, []string{"task_queue"})
	info.WithLabelValues(taskQueue).Set(1)
	reg.MustRegister(info)
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}
