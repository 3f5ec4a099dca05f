// Prometheus text-format metrics of the frontend (Dynamo's names under the wideserve_frontend_
// prefix): counters, gauges and histograms with labels, safe to update from any thread.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace wideserve::frontend {

// Label values in the order of the family's label names.
using Labels = std::vector<std::string>;

// A monotonically increasing count.
class Counter {
 public:
  void inc(double v = 1.0);
  // Mirrors a cumulative count kept elsewhere (a worker's): the value never goes down.
  void advance_to(double total);
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

// A value that goes up and down.
class Gauge {
 public:
  void set(double v) { value_.store(v, std::memory_order_relaxed); }
  void add(double v);
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

// Cumulative-bucket histogram.
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void observe(double v);
  // Appends the _bucket/_sum/_count lines of this series.
  void render(const std::string& name, const std::string& labels, std::string& out) const;
  uint64_t count() const;

 private:
  std::vector<double> bounds_;
  mutable std::mutex mu_;
  std::vector<uint64_t> counts_;  // per bucket (not cumulative), last = +Inf
  double sum_ = 0.0;
};

// All metrics of one process; families are created up front, series on first use.
class MetricsRegistry {
 public:
  Counter& counter(const std::string& name, const std::string& help,
                   const std::vector<std::string>& label_names, const Labels& labels);
  Gauge& gauge(const std::string& name, const std::string& help,
               const std::vector<std::string>& label_names, const Labels& labels);
  Histogram& histogram(const std::string& name, const std::string& help,
                       const std::vector<std::string>& label_names, const Labels& labels,
                       const std::vector<double>& bounds);
  // Drops every series of a gauge family whose labels start with `prefix` (a departed worker).
  void remove_gauge_series(const std::string& name, const Labels& prefix);
  // The same for every series type (counters, gauges, histograms) of a family.
  void remove_series(const std::string& name, const Labels& prefix);
  // Prometheus text exposition format 0.0.4.
  std::string render() const;

 private:
  struct Family {
    std::string help, type;
    std::vector<std::string> label_names;
    std::vector<double> bounds;
    std::map<Labels, std::unique_ptr<Counter>> counters;
    std::map<Labels, std::unique_ptr<Gauge>> gauges;
    std::map<Labels, std::unique_ptr<Histogram>> histograms;
  };
  Family& family(const std::string& name, const std::string& help, const char* type,
                 const std::vector<std::string>& label_names);

  mutable std::mutex mu_;
  std::map<std::string, Family> families_;
};

// Bucket bounds in seconds for latency histograms (1 ms .. 10 min).
const std::vector<double>& latency_buckets();
// Bucket bounds for token counts (1 .. 1M).
const std::vector<double>& token_buckets();

}  // namespace wideserve::frontend
