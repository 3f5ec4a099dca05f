// UCX backend of the transfer agent: UCP worker address + packed rkeys as metadata, ucp_put_nbx
// per merged op, an endpoint flush, then an eager active message carrying the notification.
#pragma once

#include "transfer/transfer_agent.h"

namespace wideserve::transfer {

// Makes a UCX agent (see transfer_agent.h for the contract).
std::unique_ptr<TransferAgent> make_ucx_agent(const AgentOptions& opts);

}  // namespace wideserve::transfer
