#pragma once
// A scope in which idle pool threads stay awake between parallel_for calls.
//
// The pool's threads spin for a short while after a call and then sleep, so that a burst of
// calls (a decoded token's) finds them awake and an idle process costs nothing. Some callers
// issue thousands of short calls separated by serial steps longer than that spin: a gradient
// boosting fit runs one to three passes per split of every tree. There every call pays a wake-up
// (tens of microseconds, more on a VM), during which the caller works alone. While a
// PoolStayAwake lives, idle threads keep spinning instead, and give the CPU back to the
// scheduler between checks, so a shared machine's other processes still run.
namespace ember {

class PoolStayAwake {
 public:
  PoolStayAwake();
  ~PoolStayAwake();
  PoolStayAwake(const PoolStayAwake&) = delete;
  PoolStayAwake& operator=(const PoolStayAwake&) = delete;
};

}  // namespace ember
