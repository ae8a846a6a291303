// caf::anon_send() as an actor's hot paths need it: the message is
// enqueued from the execution context of `self` (the scheduler thread
// running it), not from "nowhere". CAF 0.17's anon_send() passes no
// context, so a receiver it wakes goes to the scheduler's shared queue and
// wakes another thread; enqueued from `self`'s context it takes this
// thread's next slot (app/next_slot_scheduling.hpp) and runs as soon as
// `self` is done, with no wake-up. Include only from .cpp files: it pulls
// in CAF.
//
// Contract: anon_send_here(self, dest, xs...) delivers what
// caf::anon_send(dest, xs...) does (no sender, normal priority), with
// caf::anon_send()'s compile-time check.
#pragma once

#include <utility>

#include <caf/actor_cast.hpp>
#include <caf/message_id.hpp>
#include <caf/send.hpp>

namespace bgagent {

namespace detail {

// caf::anon_send()'s check: `dest` accepts the message.
template <class Dest, class... Ts>
constexpr void check_receiver() {
  using token = caf::detail::type_list<caf::detail::strip_and_convert_t<Ts>...>;
  static_assert(caf::response_type_unbox<caf::signatures_of_t<Dest>,
                                         token>::valid,
                "receiver does not accept given message");
}

} // namespace detail

template <class Self, class Dest, class... Ts>
void anon_send_here(Self* self, const Dest& dest, Ts&&... xs) {
  detail::check_receiver<Dest, Ts...>();
  if (dest)
    caf::actor_cast<caf::abstract_actor*>(dest)->eq_impl(
      caf::make_message_id(), nullptr, self->context(),
      std::forward<Ts>(xs)...);
}

} // namespace bgagent
