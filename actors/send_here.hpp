// caf::send_as() and caf::anon_send() as an actor's hot paths need them:
// the message is enqueued from the execution context of `self` (the
// scheduler thread running it), not from "nowhere". CAF 0.17's two
// functions pass no context, so a receiver they wake goes to the
// scheduler's shared queue and wakes another thread; enqueued from `self`'s
// context it takes this thread's next slot (app/next_slot_scheduling.hpp)
// and runs as soon as `self` is done, with no wake-up. Include only from
// .cpp files: it pulls in CAF.
//
// Contract: send_as_here(self, src, dest, xs...) delivers what
// caf::send_as(src, dest, xs...) delivers (sender `src`, normal priority);
// anon_send_here(self, dest, xs...) what caf::anon_send(dest, xs...) does
// (no sender). Both make caf::send_as()'s compile-time checks.
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

// caf::send_as()'s checks: that one, a statically typed source sends only
// to a statically typed destination, and the source accepts the reply.
template <class Source, class Dest, class... Ts>
constexpr void check_sender_and_receiver() {
  check_receiver<Dest, Ts...>();
  using token = caf::detail::type_list<caf::detail::strip_and_convert_t<Ts>...>;
  using reply = caf::response_type_unbox_t<caf::signatures_of_t<Dest>, token>;
  static_assert(!caf::statically_typed<Source>() ||
                  caf::statically_typed<Dest>(),
                "statically typed actors can only send() to other "
                "statically typed actors");
  static_assert(caf::is_void_response<reply>::value ||
                  caf::response_type_unbox<caf::signatures_of_t<Source>,
                                           reply>::valid,
                "the source does not accept the response message");
}

} // namespace detail

template <class Self, class Source, class Dest, class... Ts>
void send_as_here(Self* self, const Source& src, const Dest& dest,
                  Ts&&... xs) {
  detail::check_sender_and_receiver<Source, Dest, Ts...>();
  if (dest)
    caf::actor_cast<caf::abstract_actor*>(dest)->eq_impl(
      caf::make_message_id(), caf::actor_cast<caf::strong_actor_ptr>(src),
      self->context(), std::forward<Ts>(xs)...);
}

template <class Self, class Dest, class... Ts>
void anon_send_here(Self* self, const Dest& dest, Ts&&... xs) {
  detail::check_receiver<Dest, Ts...>();
  if (dest)
    caf::actor_cast<caf::abstract_actor*>(dest)->eq_impl(
      caf::make_message_id(), nullptr, self->context(),
      std::forward<Ts>(xs)...);
}

} // namespace bgagent
