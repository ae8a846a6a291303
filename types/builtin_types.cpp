// The seed's three task types, written in the types-file format a user
// writes (a user's file may override them). Their offline answers come
// from real heuristics (providers/offline_provider.cpp).
#include "types/builtin_types.hpp"

namespace bgagent {

const char* builtin_types_yaml() {
  return R"YAML(
summarize:
  description: One-sentence summary of the input.
  system: >-
    You summarize text. Answer with only a JSON object of the form
    {"summary": "<one sentence>"}: one sentence, no preamble, no code fences.
  schema:
    type: object
    required: [summary]
    properties:
      summary: {type: string, minLength: 1}
  max_tokens: 256

analyze_sentiment:
  description: Sentiment (positive, negative, neutral) with a confidence.
  system: >-
    You classify the sentiment of text. Answer with only a JSON object of the
    form {"sentiment": "positive" | "negative" | "neutral", "confidence":
    <number from 0 to 1>}, no preamble, no code fences.
  schema:
    type: object
    required: [sentiment, confidence]
    properties:
      sentiment: {enum: [positive, negative, neutral]}
      confidence: {type: number, minimum: 0, maximum: 1}
  max_tokens: 64

extract_entities:
  description: Named entities with their kinds.
  system: >-
    You extract named entities from text. Answer with only a JSON object of
    the form {"entities": [{"text": "<as written>", "type": "PERSON" |
    "ORGANIZATION" | "LOCATION" | "DATE" | "MONEY" | "EMAIL" | "URL" |
    "PERCENT" | "MISC"}]}, no preamble, no code fences.
  schema:
    type: object
    required: [entities]
    properties:
      entities:
        type: array
        items:
          type: object
          required: [text, type]
          properties:
            text: {type: string}
            type: {type: string}
  max_tokens: 512
)YAML";
}

} // namespace bgagent
