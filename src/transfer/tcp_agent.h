// TCP backend of the transfer agent: a listening socket per agent; writers stream (address,
// length, bytes) frames that the target bounds-checks against its registered regions and receives
// straight into place, then a commit frame carrying the notification, acknowledged by the target.
#pragma once

#include "transfer/transfer_agent.h"

namespace wideserve::transfer {

// Makes a TCP agent (see transfer_agent.h for the contract).
std::unique_ptr<TransferAgent> make_tcp_agent(const AgentOptions& opts);

}  // namespace wideserve::transfer
