#include "runtime/rank_wire.h"

#include <variant>

#include "common/check.h"
#include "runtime/codec.h"

namespace wideserve::runtime {

engine::RankWire request_plane_rank_wire() {
  engine::RankWire w;
  w.encode_request = [](const engine::NewRequest& r) {
    WS_CHECK(!r.hold_kv, "hold_kv requests do not cross nodes");
    GenerateRequest g;
    g.request_id = r.id;
    g.token_ids = r.prompt;
    g.params = r.params;
    g.sample_index = r.sample_index;
    g.disagg = r.disagg;
    g.resumed_tokens = r.resumed_tokens;
    return encode(g);
  };
  w.decode_request = [](std::string_view data) {
    Message m = decode(data);
    auto* g = std::get_if<GenerateRequest>(&m);
    WS_CHECK_CODE(kDataLoss, g, "rank wire: expected a GenerateRequest, got {}",
                  message_type_name(message_type(m)));
    engine::NewRequest r;
    r.id = g->request_id;
    r.prompt = std::move(g->token_ids);
    r.params = std::move(g->params);
    r.sample_index = g->sample_index;
    r.disagg = std::move(g->disagg);
    r.resumed_tokens = g->resumed_tokens;
    return r;
  };
  w.encode_output = [](const engine::RequestOutput& o) { return encode(GenerateOutput{o}); };
  w.decode_output = [](std::string_view data) {
    Message m = decode(data);
    auto* g = std::get_if<GenerateOutput>(&m);
    WS_CHECK_CODE(kDataLoss, g, "rank wire: expected a GenerateOutput, got {}",
                  message_type_name(message_type(m)));
    return std::move(g->output);
  };
  return w;
}

}  // namespace wideserve::runtime
