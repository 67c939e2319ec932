//! `includeTotal`, the pure part: the budget one count runs under, shared by the time slices it counts at
//! once, and the total a page answers with. The store does the counting ([`crate::store::lists`]); nothing
//! here talks to AWS.
//!
//! A count stops at whichever runs out first of its time and its items (see
//! [`crate::config::TotalBudget`]). What it counted until then is a lower bound: every entry counted is a
//! distinct matching entry (the slices do not overlap, nor do the pages of one slice), and a request cut off
//! in flight counts nothing.

use std::sync::{Mutex, PoisonError};

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::config::TotalBudget;

/// `pagination.total` and `pagination.totalExact`: every matching call (`exact`), or at least `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Total {
    pub count: u64,
    pub exact: bool,
}

impl Total {
    /// The total of a list that a first page read whole: its `entries`, as a count would find them.
    pub fn whole(entries: usize) -> Total {
        Total {
            count: entries as u64,
            exact: true,
        }
    }

    /// The total a page of `on_page` calls answers with. An exact count stays as it is. A lower bound is
    /// raised to the page's own calls: they match, so there are at least that many, while a count cut
    /// short may not have reached them (it cannot add them either: it may have counted some of them).
    pub fn at_least(self, on_page: usize) -> Total {
        match self.exact {
            true => self,
            false => Total {
                count: self.count.max(on_page as u64),
                exact: false,
            },
        }
    }
}

/// What the slices may still read, between them.
#[derive(Debug)]
struct Items {
    left: u64,
    /// Requests sent with a share of the items and not yet settled.
    in_flight: u32,
}

#[derive(Debug, PartialEq, Eq)]
enum Grant {
    /// Send one request reading at most this many items.
    Read(u64),
    /// Nothing is left now, but requests in flight may give some back.
    Wait,
    /// Nothing is left, and nothing will come back.
    Spent,
}

impl Items {
    fn take(&mut self, page: u64) -> Grant {
        if self.left > 0 {
            let n = self.left.min(page);
            self.left -= n;
            self.in_flight += 1;
            Grant::Read(n)
        } else if self.in_flight > 0 {
            Grant::Wait
        } else {
            Grant::Spent
        }
    }

    /// A request that was granted `granted` items read `read`: the rest goes back to the others.
    fn settle(&mut self, granted: u64, read: u64) {
        self.left += granted.saturating_sub(read);
        self.in_flight = self.in_flight.saturating_sub(1);
    }
}

/// The budget of one count, shared by its slices: a deadline, and items handed out one request at a time.
/// Every item a request may read is taken before it is sent, so the items read over all slices never
/// exceed the budget, however the requests interleave.
#[derive(Debug)]
pub struct Budget {
    deadline: Instant,
    items: Mutex<Items>,
    settled: Notify,
}

impl Budget {
    /// A count that starts now.
    pub fn start(limits: TotalBudget) -> Budget {
        let now = Instant::now();
        Budget {
            deadline: now.checked_add(limits.time).unwrap_or(now),
            items: Mutex::new(Items {
                left: limits.max_items,
                in_flight: 0,
            }),
            settled: Notify::new(),
        }
    }

    /// When the count must have answered; requests still in flight then are dropped.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Whether nothing more may be read: the time is up, or every item is spent.
    pub fn exhausted(&self) -> bool {
        let items = self.items.lock().unwrap_or_else(PoisonError::into_inner);
        Instant::now() >= self.deadline || (items.left == 0 && items.in_flight == 0)
    }

    /// How many items the next request of a slice may read, at most `page`; `None`: stop, the budget is
    /// spent. While other slices hold what is left, waits for them to settle and give back what they did
    /// not read, so a count that fits its budget is never cut short by the order its requests ran in.
    pub async fn take(&self, page: u64) -> Option<u64> {
        loop {
            if Instant::now() >= self.deadline {
                return None;
            }
            // Made before looking, so a settle between the look and the wait still wakes this slice.
            let settled = self.settled.notified();
            let grant = self.items.lock().unwrap_or_else(PoisonError::into_inner).take(page);
            match grant {
                Grant::Read(n) => return Some(n),
                Grant::Spent => return None,
                Grant::Wait => settled.await,
            }
        }
    }

    /// After a request granted `granted` items read `read`.
    pub fn settle(&self, granted: u64, read: u64) {
        self.items
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .settle(granted, read);
        self.settled.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn limits(ms: u64, max_items: u64) -> TotalBudget {
        TotalBudget {
            time: Duration::from_millis(ms),
            max_items,
        }
    }

    #[test]
    fn a_lower_bound_is_raised_to_the_page_and_an_exact_count_is_left_alone() {
        let cut = Total { count: 3, exact: false };
        assert_eq!(
            cut.at_least(10),
            Total {
                count: 10,
                exact: false
            }
        );
        assert_eq!(cut.at_least(2), cut);
        let exact = Total { count: 3, exact: true };
        assert_eq!(exact.at_least(10), exact);
        assert_eq!(Total::whole(7), Total { count: 7, exact: true });
    }

    #[test]
    fn items_are_handed_out_a_page_at_a_time_and_what_is_not_read_comes_back() {
        let mut items = Items {
            left: 2500,
            in_flight: 0,
        };
        assert_eq!(items.take(1000), Grant::Read(1000));
        assert_eq!(items.take(1000), Grant::Read(1000));
        assert_eq!(items.take(1000), Grant::Read(500));
        assert_eq!(items.take(1000), Grant::Wait);
        // A slice that ended after 200 of its 1,000 gives 800 back to the others.
        items.settle(1000, 200);
        assert_eq!(items.take(1000), Grant::Read(800));
        // The others read all they were given; while one is still in flight, a slice waits.
        items.settle(1000, 1000);
        items.settle(500, 500);
        assert_eq!(items.take(1000), Grant::Wait);
        items.settle(800, 800);
        assert_eq!((items.left, items.in_flight), (0, 0));
        assert_eq!(items.take(1000), Grant::Spent);
    }

    #[test]
    fn slices_that_share_a_budget_never_read_more_than_it_together() {
        // Eight slices of 300 items each, a budget of 1,000, requests of at most 128 items: the slices read
        // 1,000 between them, and then nothing is granted.
        let mut items = Items {
            left: 1000,
            in_flight: 0,
        };
        let mut remaining = [300u64; 8];
        let mut read = 0;
        loop {
            let mut granted = Vec::new();
            for (slice, left) in remaining.iter().enumerate() {
                if *left > 0 {
                    if let Grant::Read(n) = items.take(128) {
                        granted.push((slice, n));
                    }
                }
            }
            if granted.is_empty() {
                break;
            }
            for (slice, n) in granted {
                let got = n.min(remaining[slice]);
                remaining[slice] -= got;
                read += got;
                items.settle(n, got);
            }
        }
        assert_eq!(read, 1000);
        assert_eq!(items.take(128), Grant::Spent);
    }

    #[tokio::test]
    async fn a_budget_of_no_time_or_no_items_grants_nothing() {
        assert!(Budget::start(limits(0, 50_000)).exhausted());
        assert_eq!(Budget::start(limits(0, 50_000)).take(1000).await, None);
        assert!(Budget::start(limits(60_000, 0)).exhausted());
        assert_eq!(Budget::start(limits(60_000, 0)).take(1000).await, None);
        assert!(!Budget::start(limits(60_000, 1)).exhausted());
    }

    #[tokio::test]
    async fn a_slice_waits_for_what_another_gives_back_instead_of_stopping() {
        let budget = Budget::start(limits(60_000, 1000));
        assert_eq!(budget.take(1000).await, Some(1000));
        let (waited, ()) = tokio::join!(budget.take(1000), async {
            tokio::task::yield_now().await;
            // The first slice read 400 of its 1,000 and ended.
            budget.settle(1000, 400);
        });
        assert_eq!(waited, Some(600));
        budget.settle(600, 600);
        assert_eq!(budget.take(1000).await, None);
        assert!(budget.exhausted());
    }
}
