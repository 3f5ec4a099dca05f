#include "disagg/kv_transfer_plan.h"

#include "common/check.h"

namespace wideserve::disagg {

KvLayout layout_of(const engine::KvBufferInfo& kv) {
  return {reinterpret_cast<uint64_t>(kv.base),
          kv.num_layers,
          kv.slots,
          kv.row_dim,
          kv.elem_bytes,
          kv.page_size,
          kv.dtype};
}

nlohmann::json to_json(const KvLayout& l) {
  return {{"base", l.base},       {"num_layers", l.num_layers}, {"slots", l.slots},
          {"row_dim", l.row_dim}, {"elem_bytes", l.elem_bytes}, {"page_size", l.page_size},
          {"dtype", l.dtype}};
}

KvLayout kv_layout_from_json(const nlohmann::json& j) {
  KvLayout l;
  try {
    l.base = j.at("base").get<uint64_t>();
    l.num_layers = j.at("num_layers").get<int64_t>();
    l.slots = j.at("slots").get<int64_t>();
    l.row_dim = j.at("row_dim").get<int64_t>();
    l.elem_bytes = j.at("elem_bytes").get<int64_t>();
    l.page_size = j.at("page_size").get<int64_t>();
    l.dtype = j.at("dtype").get<std::string>();
  } catch (const nlohmann::json::exception& e) {
    WS_THROW(kDataLoss, "malformed KV layout from peer: {}", e.what());
  }
  WS_CHECK_CODE(
      kDataLoss,
      l.num_layers > 0 && l.slots > 0 && l.row_dim > 0 && l.elem_bytes > 0 && l.page_size > 0,
      "malformed KV layout from peer");
  return l;
}

void check_compatible(const KvLayout& p, const KvLayout& d) {
  WS_CHECK_ARG(
      p.num_layers == d.num_layers && p.row_dim == d.row_dim && p.elem_bytes == d.elem_bytes &&
          p.dtype == d.dtype,
      "prefill and decode KV pools differ (layers {} vs {}, row {} vs {}, dtype {} vs {}): "
      "both workers must serve the same model",
      p.num_layers, d.num_layers, p.row_dim, d.row_dim, p.dtype, d.dtype);
}

std::vector<transfer::WriteOp> plan_kv_writes(const KvLayout& src,
                                              std::span<const int32_t> src_pages,
                                              const KvLayout& dst,
                                              std::span<const int32_t> dst_pages,
                                              int64_t num_tokens) {
  check_compatible(src, dst);
  WS_CHECK_ARG(
      (num_tokens + src.page_size - 1) / src.page_size <= static_cast<int64_t>(src_pages.size()) &&
          (num_tokens + dst.page_size - 1) / dst.page_size <=
              static_cast<int64_t>(dst_pages.size()),
      "page tables too short for {} tokens", num_tokens);
  const int64_t row_bytes = src.row_dim * src.elem_bytes;
  auto slot = [](const KvLayout& l, std::span<const int32_t> pages, int64_t pos) {
    const int32_t page = pages[static_cast<size_t>(pos / l.page_size)];
    WS_CHECK_ARG(page >= 0 && (page + 1) * l.page_size <= l.slots, "page {} outside the pool",
                 page);
    return static_cast<int64_t>(page) * l.page_size + pos % l.page_size;
  };
  std::vector<transfer::WriteOp> ops;
  for (int64_t layer = 0; layer < src.num_layers; ++layer) {
    int64_t pos = 0;
    while (pos < num_tokens) {
      // The longest run of positions contiguous on both sides.
      const int64_t s0 = slot(src, src_pages, pos), d0 = slot(dst, dst_pages, pos);
      int64_t n = 1;
      while (pos + n < num_tokens && slot(src, src_pages, pos + n) == s0 + n &&
             slot(dst, dst_pages, pos + n) == d0 + n)
        ++n;
      transfer::WriteOp op;
      op.local = reinterpret_cast<const void*>(src.base + ((layer * src.slots + s0) * row_bytes));
      op.remote = dst.base + static_cast<uint64_t>((layer * dst.slots + d0) * row_bytes);
      op.length = static_cast<size_t>(n * row_bytes);
      ops.push_back(op);
      pos += n;
    }
  }
  return ops;
}

}  // namespace wideserve::disagg
