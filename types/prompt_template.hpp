// Prompt templates: text with `{{input}}` and `{{NAME}}` placeholders.
//
// Contract: a placeholder is `{{` NAME `}}` with NAME made of letters,
// digits, `_`, `-` and `.`, starting with a letter or `_`; anything else
// (a lone `{{`, JSON in a prompt) is literal text. render() replaces
// `{{input}}` with the input and every other placeholder with its value in
// `vars`; it throws std::out_of_range naming the first placeholder that has
// no value. Rendering never re-reads what it inserted, so a value that
// itself contains `{{x}}` is inserted as it is.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace bgagent {

using template_vars = std::map<std::string, std::string>;

// The distinct placeholder names in `text`, in order of first use.
std::vector<std::string> placeholders(const std::string& text);

std::string render(const std::string& text, const std::string& input,
                   const template_vars& vars);

} // namespace bgagent
