#include "providers/offline_provider.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <sstream>
#include <string_view>
#include <utility>

#include <nlohmann/json.hpp>

#include "providers/ascii.hpp"
#include "providers/entity_patterns.hpp"
#include "messages/sha256.hpp"
#include "messages/utf8.hpp"
#include "providers/result_validation.hpp"
#include "providers/word_set.hpp"
#include "types/schema_instance.hpp"

namespace bgagent {

using nlohmann::json;

namespace {

// The heuristics run once per task and are a large share of an offline
// run's CPU: words are views into one lower-cased copy of the text, the
// word lists are flat sets of views (word_set.hpp) and character classes
// come from a table (ascii.hpp), so a task allocates a handful of times
// instead of once per word.

bool word_char(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9') || c == '\'' || c >= 0x80;
}

char ascii_lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out)
    c = ascii_lower(c);
  return out;
}

// Appends the words of `text` (already lower-cased, ASCII) to `out`: what
// every heuristic compares.
void words_of(std::string_view text, std::vector<std::string_view>& out) {
  size_t i = 0, n = text.size();
  while (i < n) {
    while (i < n && !word_char(static_cast<unsigned char>(text[i])))
      ++i;
    size_t b = i;
    while (i < n && word_char(static_cast<unsigned char>(text[i])))
      ++i;
    if (i > b)
      out.push_back(text.substr(b, i - b));
  }
}

const word_set& stopwords() {
  static const word_set s{
    "a", "an", "the", "and", "or", "but", "if", "of", "to", "in", "on", "at",
    "for", "with", "by", "from", "as", "is", "are", "was", "were", "be",
    "been", "it", "its", "this", "that", "these", "those", "we", "you", "they",
    "he", "she", "i", "our", "their", "his", "her", "not", "no", "so", "than",
    "then", "there", "has", "have", "had", "will", "would", "can", "could",
    "do", "does", "did", "about", "into", "over", "after", "before", "also"};
  return s;
}

using ascii::is_space;

// Each sentence as [begin, end) of `text`, trimmed: a sentence ends at '.',
// '!' or '?' followed by a space (or the end), or at a newline.
std::vector<std::pair<size_t, size_t>> sentences_of(std::string_view text) {
  std::vector<std::pair<size_t, size_t>> out;
  auto add = [&](size_t b, size_t e) {
    while (b < e && (text[b] == ' ' || text[b] == '\t' || text[b] == '\r' ||
                     text[b] == '\n'))
      ++b;
    while (e > b && (text[e - 1] == ' ' || text[e - 1] == '\t' ||
                     text[e - 1] == '\r' || text[e - 1] == '\n'))
      --e;
    if (e > b)
      out.emplace_back(b, e);
  };
  size_t from = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    bool end = (c == '.' || c == '!' || c == '?') &&
               (i + 1 == text.size() || is_space(text[i + 1]));
    if (end || c == '\n') {
      add(from, i + 1);
      from = i + 1;
    }
  }
  add(from, text.size());
  return out;
}

// Extractive: the sentence whose content words are most frequent in the
// whole text (ties go to the earlier sentence), capped at 40 words.
json summarize(const std::string& text) {
  auto sents = sentences_of(text);
  if (sents.empty())
    return {{"summary", ""}};
  // Sentence bounds hold in the lower-cased copy: it has the same length.
  std::string low = lower(text);
  std::vector<std::string_view> ws;
  words_of(low, ws);
  word_counts freq(ws.size());
  for (auto w : ws)
    if (!stopwords().contains(w))
      freq.add(w);
  size_t best = 0;
  double best_score = -1;
  for (size_t i = 0; i < sents.size(); ++i) {
    ws.clear();
    words_of(std::string_view(low).substr(sents[i].first,
                                          sents[i].second - sents[i].first),
             ws);
    if (ws.empty())
      continue;
    double score = 0;
    for (auto w : ws)
      score += freq.count(w);
    score /= std::sqrt(static_cast<double>(ws.size()));
    if (score > best_score) {
      best_score = score;
      best = i;
    }
  }
  std::string s = text.substr(sents[best].first,
                              sents[best].second - sents[best].first);
  ws.clear();
  words_of(std::string_view(low).substr(sents[best].first, s.size()), ws);
  if (ws.size() > 40) {
    std::istringstream in(s);
    std::string w, out;
    for (int n = 0; n < 40 && (in >> w); ++n)
      out += (n ? " " : "") + w;
    s = out + "...";
  }
  if (!s.empty() && s.back() != '.' && s.back() != '!' && s.back() != '?')
    s += '.';
  return {{"summary", s}};
}

const word_set& positive_words() {
  static const word_set s{
    "good", "great", "excellent", "amazing", "love", "loved", "loves",
    "wonderful", "fantastic", "happy", "pleased", "delighted", "best",
    "perfect", "awesome", "nice", "enjoy", "enjoyed", "recommend",
    "recommended", "brilliant", "superb", "outstanding", "satisfied",
    "impressive", "impressed", "beautiful", "fast", "reliable", "helpful",
    "friendly", "easy", "win", "success", "successful", "thrilled", "glad",
    "positive", "improved", "improvement", "exceeded", "praise", "like",
    "liked", "favorite", "smooth", "strong", "gain", "gains", "growth"};
  return s;
}

const word_set& negative_words() {
  static const word_set s{
    "bad", "terrible", "awful", "horrible", "hate", "hated", "worst", "poor",
    "disappointed", "disappointing", "angry", "sad", "broken", "slow",
    "useless", "refund", "fail", "failed", "failure", "problem", "problems",
    "issue", "issues", "bug", "bugs", "crash", "crashed", "rude", "never",
    "waste", "wasted", "unhappy", "annoying", "frustrated", "frustrating",
    "late", "delay", "delayed", "expensive", "negative", "loss", "losses",
    "decline", "dropped", "worse", "complaint", "defective", "unreliable"};
  return s;
}

json sentiment(const std::string& text) {
  static const word_set negators{"not",    "no",     "never", "isn't",
                                 "wasn't", "don't",  "didn't", "doesn't",
                                 "hardly", "without"};
  int pos = 0, neg = 0;
  std::string low = lower(text);
  std::vector<std::string_view> ws;
  words_of(low, ws);
  std::vector<bool> negator(ws.size());
  for (size_t i = 0; i < ws.size(); ++i)
    negator[i] = negators.contains(ws[i]);
  for (size_t i = 0; i < ws.size(); ++i) {
    auto w = ws[i];
    bool negated = false;
    for (size_t k = 1; k <= 2 && k <= i; ++k)
      if (negator[i - k])
        negated = true;
    bool p = positive_words().contains(w);
    bool n = negative_words().contains(w) && !negator[i];
    if (negated)
      std::swap(p, n);
    pos += p;
    neg += n;
  }
  int hits = pos + neg;
  std::string label = "neutral";
  double confidence = 0.6;
  if (hits > 0) {
    double score = static_cast<double>(pos - neg) / hits;
    double strength = std::min(1.0, hits / 4.0);
    if (score > 0.2)
      label = "positive";
    else if (score < -0.2)
      label = "negative";
    if (label == "neutral")
      confidence = 0.5 + 0.3 * (1.0 - std::fabs(score));
    else
      confidence = 0.55 + 0.4 * std::fabs(score) * strength;
  }
  confidence = std::round(confidence * 100.0) / 100.0;
  return {{"sentiment", label}, {"confidence", confidence}};
}

// `w` without trailing punctuation other than '.', and without leading
// punctuation.
std::string_view strip(std::string_view w) {
  while (!w.empty() && ascii::is_punct(w.back()) && w.back() != '.')
    w.remove_suffix(1);
  while (!w.empty() && ascii::is_punct(w.front()))
    w.remove_prefix(1);
  return w;
}

bool is_cap(std::string_view w) {
  return !w.empty() && ascii::is_upper(w[0]);
}

// Whether the lower-cased `w` is in `set`, without allocating for the
// short words such sets hold.
bool contains_lowered(const word_set& set, std::string_view w) {
  char buf[16];
  if (w.size() > sizeof(buf))
    return false; // longer than any word of the sets it is used for
  for (size_t k = 0; k < w.size(); ++k)
    buf[k] = ascii_lower(w[k]);
  return set.contains(std::string_view(buf, w.size()));
}

bool is_stopword(std::string_view w) { return contains_lowered(stopwords(), w); }

json entities(const std::string& text) {
  json out = json::array();
  // (type, text) of the entities so far: a set, not a list, since a long
  // input may name thousands.
  std::set<std::pair<std::string, std::string>> seen;
  auto add = [&](const std::string& t, std::string_view type) {
    if (seen.emplace(std::string(type), t).second)
      out.push_back({{"text", t}, {"type", type}});
  };
  std::string rest = text;
  for (auto& found : extract_pattern_entities(rest))
    add(found.text, found.type);
  static const word_set org_words{
    "Inc", "Inc.", "Corp", "Corporation", "Ltd", "LLC", "GmbH", "University",
    "Company", "Bank", "Institute", "Foundation", "Group", "Agency", "Labs",
    "Technologies", "Systems", "Association", "Council", "Ministry"};
  static const word_set places{
    "Paris", "London", "Berlin", "Tokyo", "New York", "San Francisco",
    "California", "Texas", "France", "Germany", "Japan", "China", "India",
    "Europe", "Asia", "Africa", "America", "United States", "Canada",
    "Brazil", "Spain", "Italy", "Seattle", "Boston", "Chicago", "Sydney",
    "Australia", "Mexico", "Russia", "Beijing", "Singapore", "Amsterdam",
    "Dublin", "Ireland", "Scotland", "England", "Munich", "Zurich"};
  static const word_set person_titles{"Mr",  "Mr.",   "Mrs", "Mrs.",
                                      "Ms",  "Ms.",   "Dr",  "Dr.",
                                      "Prof", "Prof.", "CEO"};
  static const word_set place_preps{"in", "at", "from", "to", "near"};
  // Capitalised spans: consecutive capitalised words, not counting a lone
  // sentence-initial stopword. Tokens are split at whitespace.
  std::vector<std::string_view> toks;
  {
    std::string_view r(rest);
    size_t i = 0;
    while (i < r.size()) {
      while (i < r.size() && is_space(r[i]))
        ++i;
      size_t b = i;
      while (i < r.size() && !is_space(r[i]))
        ++i;
      if (i > b)
        toks.push_back(r.substr(b, i - b));
    }
  }
  std::string span;
  for (size_t i = 0; i < toks.size();) {
    auto w = strip(toks[i]);
    if (!is_cap(w) ||
        (is_stopword(w) && (i == 0 || toks[i - 1].back() == '.'))) {
      ++i;
      continue;
    }
    bool title = person_titles.contains(w);
    size_t j = i;
    span.clear();
    bool org = false;
    for (; j < toks.size(); ++j) {
      auto raw = toks[j];
      auto x = strip(raw);
      if (!is_cap(x) || (j > i && is_stopword(x)))
        break;
      if (org_words.contains(x))
        org = true;
      if (!(title && j == i)) {
        if (x.size() > 1 && x.back() == '.' && !org_words.contains(x))
          x.remove_suffix(1);
        if (!span.empty())
          span += ' ';
        span.append(x.data(), x.size());
      }
      char last = raw.back();
      if (last == ',' || last == '.' || last == ';' || last == ':' ||
          last == '!' || last == '?')
        {
          ++j;
          break;
        }
    }
    if (!span.empty()) {
      std::string_view type = "MISC";
      bool prep = i > 0 && contains_lowered(place_preps, strip(toks[i - 1]));
      if (title)
        type = "PERSON";
      else if (org)
        type = "ORGANIZATION";
      else if (places.contains(span) || prep)
        type = "LOCATION";
      else if (span.find(' ') != std::string::npos)
        type = "PERSON";
      bool sentence_start = i == 0 || toks[i - 1].back() == '.';
      // A lone capitalised word at a sentence start is usually not a name.
      if (!(sentence_start && type == "MISC"))
        add(span, type);
    }
    i = j > i ? j : i + 1;
  }
  return {{"entities", out}};
}

} // namespace

offline_provider::offline_provider() : provider(model_price{0, 0}) {}

// The seed types' heuristics, by name; null for any other type.
json heuristic(const llm_request& req) {
  if (req.type == "summarize")
    return summarize(req.input);
  if (req.type == "analyze_sentiment")
    return sentiment(req.input);
  if (req.type == "extract_entities")
    return entities(req.input);
  return nullptr;
}

// A deterministic seed from what the model would have been sent.
uint64_t seed_of(const llm_request& req) {
  auto h = sha256_hex(req.raw ? req.input : req.system + '\x1f' + req.prompt);
  return std::stoull(h.substr(0, 15), nullptr, 16);
}

// A chat request without a schema: a deterministic answer naming the last
// user message, as the assistant message a server would return.
static call_outcome chat_answer(const llm_request& req) {
  std::string last;
  auto body = json::parse(req.input, nullptr, false);
  if (body.is_object() && body.contains("messages") &&
      body["messages"].is_array())
    for (auto& m : body["messages"])
      if (m.is_object() && m.value("role", "") == "user" &&
          m.contains("content") && m["content"].is_string())
        last = m["content"].get<std::string>();
  call_outcome out;
  out.ok = true;
  out.result = json{{"role", "assistant"},
                    {"content", "offline answer to: " +
                                  utf8_clip(sanitize_utf8(last), 80, "...")}}
                 .dump(-1, ' ', false, json::error_handler_t::replace);
  out.prompt_tokens = estimate_chat_prompt_tokens(req);
  out.completion_tokens =
    std::min<uint64_t>(estimate_tokens(out.result), req.max_tokens);
  out.usage_reported = out.cost_reported = true;
  out.provider = "offline";
  out.model = "offline";
  return out;
}

call_outcome offline_provider::compute(const llm_request& req) {
  auto fail = [](const std::string& why) {
    auto out = make_failure(error_kind::permanent, why);
    out.provider = "offline";
    out.model = "offline";
    return out;
  };
  if (req.unusable())
    return fail("task type \"" + req.type +
                "\": its stored definition cannot be used");
  if (req.raw && req.schema.empty())
    return chat_answer(req);
  // A built-in type's heuristics, unless a user's file redefined it with a
  // schema they do not satisfy; otherwise an instance of the schema.
  auto result = req.raw ? json() : heuristic(req);
  validation v;
  if (!result.is_null())
    v = validate_value(req.schema, result);
  if (!v.ok) {
    // Parsed once a thread per schema text.
    thread_local std::map<std::string, json> parsed;
    if (parsed.size() > 256) // chat tasks may each bring their own
      parsed.clear();
    auto i = parsed.find(req.schema);
    if (i == parsed.end())
      i = parsed
            .emplace(req.schema, req.schema.empty()
                                   ? json::object()
                                   : json::parse(req.schema, nullptr, false))
            .first;
    v = validate_value(req.schema, schema_instance(i->second, seed_of(req)));
  }
  if (!v.ok)
    return fail("the offline provider cannot make an answer for type \"" +
                req.type + "\": " + v.error);
  call_outcome out;
  out.ok = true;
  out.result = v.result;
  out.prompt_tokens = estimate_chat_prompt_tokens(req);
  out.completion_tokens =
    std::min<uint64_t>(estimate_tokens(out.result), req.max_tokens);
  out.cost_usd = 0;
  out.usage_reported = true;
  out.cost_reported = true;
  out.provider = "offline";
  out.model = "offline";
  return out;
}

uint64_t offline_provider::start(const llm_request& req, completion done) {
  done(compute(req));
  return 0;
}

} // namespace bgagent
