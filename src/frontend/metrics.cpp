#include "frontend/metrics.h"

#include <fmt/format.h>

#include <algorithm>

#include "common/check.h"

namespace wideserve::frontend {
namespace {

void atomic_add(std::atomic<double>& a, double v) {
  double cur = a.load(std::memory_order_relaxed);
  while (!a.compare_exchange_weak(cur, cur + v, std::memory_order_relaxed)) {
  }
}

std::string escape(const std::string& v) {
  std::string o;
  for (char c : v) {
    if (c == '\\' || c == '"') o += '\\';
    if (c == '\n') {
      o += "\\n";
      continue;
    }
    o += c;
  }
  return o;
}

std::string label_text(const std::vector<std::string>& names, const Labels& values) {
  std::string s;
  for (size_t i = 0; i < names.size(); ++i) {
    if (i) s += ',';
    s += names[i] + "=\"" + escape(values[i]) + '"';
  }
  return s;
}

std::string number(double v) {
  if (v == static_cast<double>(static_cast<int64_t>(v)) && std::abs(v) < 1e15)
    return std::to_string(static_cast<int64_t>(v));
  return fmt::format("{:.9g}", v);
}

}  // namespace

void Counter::inc(double v) {
  atomic_add(value_, v);
}
void Counter::advance_to(double total) {
  double cur = value_.load(std::memory_order_relaxed);
  while (total > cur && !value_.compare_exchange_weak(cur, total, std::memory_order_relaxed)) {
  }
}
void Gauge::add(double v) {
  atomic_add(value_, v);
}

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::observe(double v) {
  const size_t i = std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin();
  std::lock_guard<std::mutex> lk(mu_);
  ++counts_[i];
  sum_ += v;
}

uint64_t Histogram::count() const {
  std::lock_guard<std::mutex> lk(mu_);
  uint64_t n = 0;
  for (auto c : counts_) n += c;
  return n;
}

void Histogram::render(const std::string& name, const std::string& labels, std::string& out) const {
  std::lock_guard<std::mutex> lk(mu_);
  const std::string sep = labels.empty() ? "" : ",";
  uint64_t cum = 0;
  for (size_t i = 0; i < counts_.size(); ++i) {
    cum += counts_[i];
    const std::string le = i < bounds_.size() ? number(bounds_[i]) : "+Inf";
    out += fmt::format("{}_bucket{{{}{}le=\"{}\"}} {}\n", name, labels, sep, le, cum);
  }
  const std::string braces = labels.empty() ? "" : "{" + labels + "}";
  out += fmt::format("{}_sum{} {}\n", name, braces, number(sum_));
  out += fmt::format("{}_count{} {}\n", name, braces, cum);
}

MetricsRegistry::Family& MetricsRegistry::family(const std::string& name, const std::string& help,
                                                 const char* type,
                                                 const std::vector<std::string>& label_names) {
  auto [it, fresh] = families_.try_emplace(name);
  if (fresh) {
    it->second.help = help;
    it->second.type = type;
    it->second.label_names = label_names;
  }
  WS_CHECK(it->second.type == type && it->second.label_names == label_names,
           "metric {} registered twice with different shapes", name);
  return it->second;
}

Counter& MetricsRegistry::counter(const std::string& name, const std::string& help,
                                  const std::vector<std::string>& label_names,
                                  const Labels& labels) {
  std::lock_guard<std::mutex> lk(mu_);
  auto& f = family(name, help, "counter", label_names);
  auto& p = f.counters[labels];
  if (!p) p = std::make_unique<Counter>();
  return *p;
}

Gauge& MetricsRegistry::gauge(const std::string& name, const std::string& help,
                              const std::vector<std::string>& label_names, const Labels& labels) {
  std::lock_guard<std::mutex> lk(mu_);
  auto& f = family(name, help, "gauge", label_names);
  auto& p = f.gauges[labels];
  if (!p) p = std::make_unique<Gauge>();
  return *p;
}

Histogram& MetricsRegistry::histogram(const std::string& name, const std::string& help,
                                      const std::vector<std::string>& label_names,
                                      const Labels& labels, const std::vector<double>& bounds) {
  std::lock_guard<std::mutex> lk(mu_);
  auto& f = family(name, help, "histogram", label_names);
  auto& p = f.histograms[labels];
  if (!p) p = std::make_unique<Histogram>(bounds);
  return *p;
}

void MetricsRegistry::remove_gauge_series(const std::string& name, const Labels& prefix) {
  std::lock_guard<std::mutex> lk(mu_);
  auto it = families_.find(name);
  if (it == families_.end()) return;
  auto& g = it->second.gauges;
  for (auto s = g.begin(); s != g.end();) {
    const bool match = s->first.size() >= prefix.size() &&
                       std::equal(prefix.begin(), prefix.end(), s->first.begin());
    s = match ? g.erase(s) : std::next(s);
  }
}

void MetricsRegistry::remove_series(const std::string& name, const Labels& prefix) {
  std::lock_guard<std::mutex> lk(mu_);
  auto it = families_.find(name);
  if (it == families_.end()) return;
  auto drop = [&](auto& series) {
    for (auto s = series.begin(); s != series.end();) {
      const bool match = s->first.size() >= prefix.size() &&
                         std::equal(prefix.begin(), prefix.end(), s->first.begin());
      s = match ? series.erase(s) : std::next(s);
    }
  };
  drop(it->second.counters);
  drop(it->second.gauges);
  drop(it->second.histograms);
}

std::string MetricsRegistry::render() const {
  std::lock_guard<std::mutex> lk(mu_);
  std::string out;
  for (const auto& [name, f] : families_) {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, f.help, name, f.type);
    auto braces = [&](const Labels& l) {
      return l.empty() ? std::string() : "{" + label_text(f.label_names, l) + "}";
    };
    for (const auto& [l, c] : f.counters)
      out += fmt::format("{}{} {}\n", name, braces(l), number(c->value()));
    for (const auto& [l, g] : f.gauges)
      out += fmt::format("{}{} {}\n", name, braces(l), number(g->value()));
    for (const auto& [l, h] : f.histograms) h->render(name, label_text(f.label_names, l), out);
  }
  return out;
}

const std::vector<double>& latency_buckets() {
  static const std::vector<double> b = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                        1,     2.5,    5,     10,   30,    60,   120, 300,  600};
  return b;
}

const std::vector<double>& token_buckets() {
  static const std::vector<double> b = {1,    4,     16,    64,     256,    1024,
                                        4096, 16384, 65536, 262144, 1048576};
  return b;
}

}  // namespace wideserve::frontend
