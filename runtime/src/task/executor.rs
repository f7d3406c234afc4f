//! The per-core executor: tasks in a slab, a FIFO run queue.
//!
//! Everything here is touched by one thread only. Borrows of the executor's
//! state are short and never held across user code (a poll, a destructor, a
//! wake), so a task may spawn, wake or abort freely while it runs.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::Future;
use std::rc::Rc;
use std::task::Context;

use super::join::{JoinHandle, Task, TaskCell};
use super::waker::{self, CoreKey, TaskKey, MAX_TASKS};

/// One slot of the task slab.
struct Slot {
    gen: u16,
    /// On the run queue (so a second wake does not queue it twice).
    scheduled: bool,
    task: Option<Rc<dyn Task>>,
}

struct Inner {
    slots: Vec<Slot>,
    free: Vec<u32>,
    queue: VecDeque<u32>,
    main_scheduled: bool,
    live: usize,
}

/// A core's tasks and run queue.
pub(crate) struct Executor {
    core: CoreKey,
    inner: RefCell<Inner>,
}

impl std::fmt::Debug for Executor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = self.inner.borrow();
        f.debug_struct("Executor")
            .field("tasks", &inner.live)
            .field("ready", &inner.queue.len())
            .finish()
    }
}

impl Executor {
    /// An executor whose wakers carry `core`. The main future starts
    /// scheduled.
    pub(crate) fn new(core: CoreKey) -> Executor {
        Executor {
            core,
            inner: RefCell::new(Inner {
                slots: Vec::with_capacity(64),
                free: Vec::with_capacity(64),
                queue: VecDeque::with_capacity(64),
                main_scheduled: true,
                live: 0,
            }),
        }
    }

    /// Adds a task and queues it.
    ///
    /// # Panics
    ///
    /// If the core already holds 16,777,215 tasks.
    pub(crate) fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        let cell = TaskCell::new(future);
        let handle = cell.join_handle();
        let mut inner = self.inner.borrow_mut();
        let index = match inner.free.pop() {
            Some(i) => i,
            None => {
                assert!(
                    inner.slots.len() < MAX_TASKS,
                    "mtcp: too many tasks on one core"
                );
                inner.slots.push(Slot {
                    gen: 0,
                    scheduled: false,
                    task: None,
                });
                (inner.slots.len() - 1) as u32
            }
        };
        let slot = &mut inner.slots[index as usize];
        slot.scheduled = true;
        let key = TaskKey {
            index,
            gen: slot.gen,
        };
        cell.set_token(waker::token(self.core, key));
        slot.task = Some(cell);
        inner.queue.push_back(index);
        inner.live += 1;
        handle
    }

    /// Queues a task (or flags the main future). Stale keys are ignored.
    /// Returns false if the executor is busy (a borrow is held), in which
    /// case the caller falls back to the cross-thread queue.
    pub(crate) fn schedule(&self, key: TaskKey) -> bool {
        let Ok(mut inner) = self.inner.try_borrow_mut() else {
            return false;
        };
        if key.index == TaskKey::MAIN.index {
            inner.main_scheduled = true;
            return true;
        }
        let Some(slot) = inner.slots.get_mut(key.index as usize) else {
            return true;
        };
        if slot.gen != key.gen || slot.scheduled || slot.task.is_none() {
            return true;
        }
        slot.scheduled = true;
        inner.queue.push_back(key.index);
        true
    }

    /// Takes the main future's wake flag.
    pub(crate) fn take_main_scheduled(&self) -> bool {
        std::mem::take(&mut self.inner.borrow_mut().main_scheduled)
    }

    /// Whether anything is ready to run.
    pub(crate) fn has_ready(&self) -> bool {
        let inner = self.inner.borrow();
        inner.main_scheduled || !inner.queue.is_empty()
    }

    /// Live tasks (spawned, not yet finished).
    #[cfg(test)]
    pub(crate) fn live(&self) -> usize {
        self.inner.borrow().live
    }

    /// Polls at most `budget` queued tasks, in FIFO order. Returns how many
    /// were polled.
    pub(crate) fn run(&self, budget: usize) -> usize {
        let mut polled = 0;
        while polled < budget {
            let next = {
                let mut inner = self.inner.borrow_mut();
                let Some(index) = inner.queue.pop_front() else {
                    break;
                };
                let slot = &mut inner.slots[index as usize];
                slot.scheduled = false;
                slot.task.clone().map(|t| {
                    (
                        t,
                        TaskKey {
                            index,
                            gen: slot.gen,
                        },
                    )
                })
            };
            let Some((task, key)) = next else {
                continue;
            };
            polled += 1;
            let waker = waker::waker(self.core, key);
            let mut cx = Context::from_waker(&waker);
            if task.run(&mut cx) {
                let released = self.release(key);
                // Dropped here, outside any borrow: this may drop the
                // task's output (user code).
                drop(released);
            }
        }
        polled
    }

    fn release(&self, key: TaskKey) -> Option<Rc<dyn Task>> {
        let mut inner = self.inner.borrow_mut();
        let slot = &mut inner.slots[key.index as usize];
        if slot.gen != key.gen {
            return None;
        }
        let task = slot.task.take();
        slot.gen = slot.gen.wrapping_add(1);
        slot.scheduled = false;
        if task.is_some() {
            inner.free.push(key.index);
            inner.live -= 1;
        }
        task
    }

    /// Drops every task's future (runtime shutdown). Futures dropped here may
    /// spawn more tasks; those are dropped too, for a bounded number of
    /// rounds.
    pub(crate) fn shutdown(&self) {
        for _ in 0..16 {
            let tasks: Vec<Rc<dyn Task>> = {
                let mut inner = self.inner.borrow_mut();
                inner.queue.clear();
                let mut tasks = Vec::with_capacity(inner.live);
                for slot in inner.slots.iter_mut() {
                    if let Some(t) = slot.task.take() {
                        slot.gen = slot.gen.wrapping_add(1);
                        slot.scheduled = false;
                        tasks.push(t);
                    }
                }
                inner.free.clear();
                let n = inner.slots.len() as u32;
                inner.free.extend((0..n).rev());
                inner.live = 0;
                tasks
            };
            if tasks.is_empty() {
                return;
            }
            for t in &tasks {
                t.shutdown();
            }
            drop(tasks);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::task::Poll;

    fn exec() -> Executor {
        // Core key 0 is never registered: local scheduling only.
        Executor::new(waker::untoken(0).0)
    }

    #[test]
    fn runs_fifo_within_budget_and_frees_slots() {
        let ex = exec();
        let order = Rc::new(RefCell::new(Vec::new()));
        let handles: Vec<_> = (0..5)
            .map(|i| {
                let order = order.clone();
                ex.spawn(async move { order.borrow_mut().push(i) })
            })
            .collect();
        assert_eq!(ex.live(), 5);
        assert_eq!(ex.run(2), 2);
        assert_eq!(*order.borrow(), vec![0, 1]);
        assert_eq!(ex.run(100), 3);
        assert_eq!(*order.borrow(), vec![0, 1, 2, 3, 4]);
        assert_eq!(ex.live(), 0);
        assert!(handles.iter().all(|h| h.is_finished()));
        // Slots are reused.
        ex.spawn(async {});
        assert_eq!(ex.inner.borrow().slots.len(), 5);
    }

    #[test]
    fn stale_and_duplicate_wakes_are_ignored() {
        let ex = exec();
        let polls = Rc::new(Cell::new(0));
        let p = polls.clone();
        ex.spawn(std::future::poll_fn(move |_| {
            p.set(p.get() + 1);
            Poll::<()>::Pending
        }));
        let key = TaskKey { index: 0, gen: 0 };
        assert!(ex.schedule(key)); // already queued: no duplicate
        assert_eq!(ex.run(10), 1);
        assert!(ex.schedule(key));
        assert!(ex.schedule(key));
        assert_eq!(ex.run(10), 1);
        assert_eq!(polls.get(), 2);
        assert!(ex.schedule(TaskKey { index: 0, gen: 1 })); // stale generation
        assert!(ex.schedule(TaskKey { index: 9, gen: 0 })); // no such slot
        assert_eq!(ex.run(10), 0);
        ex.shutdown();
        assert_eq!(ex.live(), 0);
    }

    #[test]
    fn main_flag_is_separate_from_the_queue() {
        let ex = exec();
        assert!(ex.take_main_scheduled());
        assert!(!ex.take_main_scheduled());
        assert!(ex.schedule(TaskKey::MAIN));
        assert!(ex.has_ready());
        assert!(ex.take_main_scheduled());
        assert!(!ex.has_ready());
    }
}
