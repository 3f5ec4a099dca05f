// Pre-processing of one OpenAI request for a model: chat template and tokenization, limits
// against the context length, and the engine's sampling parameters. Pure (no I/O).
#pragma once

#include <vector>

#include "api/openai_request.h"
#include "engine/sampling_params.h"
#include "frontend/choice_stream.h"
#include "frontend/model_manager.h"

namespace wideserve::frontend {

// What the frontend sends to workers and how it post-processes the answers.
struct PreparedRequest {
  std::vector<std::vector<int32_t>> prompts;  // token ids; chat has exactly one
  engine::SamplingParams params;              // shared by every prompt (n inside)
  ChoiceOptions choice;                       // shared by every choice
};

// Throws api::ApiException (400) for anything the model cannot serve: no chat template, a
// template error, token ids outside the vocabulary, a prompt over the context length, and
// parameters the engine rejects.
PreparedRequest prepare_request(const api::CompletionRequest& req, const ModelInfo& model);

}  // namespace wideserve::frontend
