// Blocking request/response from a command's main thread (never from an
// actor): ask<T>(self, actor, args...) waits for the answer or throws
// std::runtime_error with CAF's error text. Include only from .cpp files.
#pragma once

#include <stdexcept>
#include <string>

#include <caf/all.hpp>

namespace bgagent {

template <class T, class Handle, class... Ts>
T ask(caf::scoped_actor& self, const Handle& dest, Ts&&... xs) {
  T result{};
  caf::error err;
  self->request(dest, caf::infinite, std::forward<Ts>(xs)...)
    .receive([&](T& x) { result = std::move(x); },
             [&](caf::error& e) { err = std::move(e); });
  if (err)
    throw std::runtime_error(to_string(err));
  return result;
}

} // namespace bgagent
