//! Every policy of the pool on a virtual clock: events in, actions out.

use super::*;

fn policy(workers: usize) -> Policy {
    Policy {
        workers,
        respawn_failed: true,
        max_requests: None,
        max_requests_jitter: 0,
        lifetime: None,
        max_rss: None,
        graceful_timeout: None,
        drain_delay: Duration::ZERO,
        hung_timeout: None,
        reuse_port: true,
        reload: false,
    }
}

fn at(secs: f64) -> Instant {
    Instant::ZERO + Duration::from_secs_f64(secs)
}

fn exit(code: i32) -> Exit {
    Exit {
        code: Some(code),
        text: format!("exit status: {code}"),
    }
}

/// A pool and the clock the test moves.
struct Sim {
    pool: Pool,
    now: Instant,
    /// The notifications the pool queued, until [`Sim::notes`] takes them.
    notes: Vec<Notify>,
}

impl Sim {
    fn new(policy: Policy) -> (Self, Vec<Action>) {
        let mut sim = Self {
            pool: Pool::new(policy, Instant::ZERO, 42),
            now: Instant::ZERO,
            notes: Vec::new(),
        };
        let first = quiet(sim.take());
        (sim, first)
    }

    fn take(&mut self) -> Vec<Action> {
        let actions: Vec<Action> = std::iter::from_fn(|| self.pool.poll_action()).collect();
        self.notes.extend(actions.iter().filter_map(|a| match a {
            Action::Notify(n) => Some(*n),
            _ => None,
        }));
        actions
    }

    /// The notifications since the last call.
    fn notes(&mut self) -> Vec<Notify> {
        std::mem::take(&mut self.notes)
    }

    /// `event` at `secs`; the actions that follow, without log lines.
    fn ev(&mut self, secs: f64, event: Event) -> Vec<Action> {
        self.now = at(secs);
        self.pool.handle(event, self.now);
        quiet(self.take())
    }

    /// The clock moves to `secs`; what the deadlines due by then cause.
    fn tick(&mut self, secs: f64) -> Vec<Action> {
        self.now = at(secs);
        self.pool.handle_timeout(self.now);
        quiet(self.take())
    }

    /// Marks every listed worker ready.
    fn ready(&mut self, secs: f64, ids: &[WorkerId]) {
        for &id in ids {
            self.ev(secs, Event::Ready(id));
        }
    }
}

/// A pool of `n` workers, all ready at 0.1 s.
fn ready_pool(n: usize) -> Sim {
    ready_with(policy(n))
}

/// A pool with `policy`, all its workers ready at 0.1 s.
fn ready_with(policy: Policy) -> Sim {
    let ids: Vec<WorkerId> = (1..=policy.workers as WorkerId).collect();
    let (mut sim, _) = Sim::new(policy);
    sim.ready(0.1, &ids);
    sim
}

/// The actions without log lines and notifications (see [`notes`]).
fn quiet(actions: Vec<Action>) -> Vec<Action> {
    actions
        .into_iter()
        .filter(|a| !matches!(a, Action::Log(..) | Action::Notify(..)))
        .collect()
}

fn spawn(worker: WorkerId, slot: usize) -> Action {
    Action::Spawn {
        worker,
        slot,
        max_requests: None,
    }
}

#[test]
fn starts_one_worker_per_slot_and_steers_to_them() {
    let (_, first) = Sim::new(policy(2));
    assert_eq!(first, [spawn(1, 0), spawn(2, 1), Action::Steer(2)]);
}

#[test]
fn a_worker_that_dies_is_replaced_and_a_crash_loop_stops_the_server() {
    let mut sim = ready_pool(2);
    // A crash long after start: replaced, the count of quick crashes reset.
    assert_eq!(
        sim.ev(10.0, Event::Exited(1, exit(1))),
        [Action::CountRestart("crashed"), spawn(3, 0)]
    );
    // Workers that die right after starting, five in a row: stop.
    let mut id = 3;
    for n in 1..MAX_QUICK_CRASHES {
        let got = sim.ev(10.0 + f64::from(n) * 0.1, Event::Exited(id, exit(1)));
        id += 1;
        assert_eq!(got, [Action::CountRestart("crashed"), spawn(id, 0)], "{n}");
    }
    let got = sim.ev(11.0, Event::Exited(id, exit(1)));
    assert_eq!(
        got,
        [Action::CountRestart("crashed"), Action::Signal(2, Sig::Int)]
    );
    assert_eq!(sim.ev(11.5, Event::Exited(2, exit(0))), [Action::Exit(1)]);
}

#[test]
fn a_worker_that_could_not_boot_stops_the_server_at_once() {
    let (mut sim, _) = Sim::new(policy(2));
    let got = sim.ev(0.5, Event::Exited(1, exit(WORKER_BOOT_ERROR)));
    // Worker 2 is still booting: SIGTERM, which ends it quietly.
    assert_eq!(got, [Action::Signal(2, Sig::Term)]);
    assert_eq!(sim.ev(0.6, Event::Exited(2, exit(0))), [Action::Exit(1)]);
}

#[test]
fn without_respawn_a_crash_stops_the_server_but_a_clean_exit_does_not() {
    let mut p = policy(1);
    p.respawn_failed = false;
    let mut sim = ready_with(p);
    assert_eq!(
        sim.ev(5.0, Event::Exited(1, exit(0))),
        [Action::CountRestart("exited"), spawn(2, 0)]
    );
    sim.ready(5.1, &[2]);
    assert_eq!(
        sim.ev(9.0, Event::Exited(2, exit(1))),
        [Action::CountRestart("crashed"), Action::Exit(1)]
    );
}

#[test]
fn a_rolling_restart_replaces_one_worker_at_a_time_in_slot_order() {
    let mut sim = ready_pool(3);
    assert_eq!(sim.ev(5.0, Event::Reload), [spawn(4, 0)]);
    // The old worker gets SIGTERM only once its replacement is ready; then
    // the next slot's replacement starts.
    assert_eq!(
        sim.ev(6.0, Event::Ready(4)),
        [
            Action::Signal(1, Sig::Int),
            Action::CountRestart("sighup"),
            spawn(5, 1)
        ]
    );
    assert_eq!(sim.ev(6.5, Event::Exited(1, exit(0))), []);
    assert_eq!(
        sim.ev(7.0, Event::Ready(5)),
        [
            Action::Signal(2, Sig::Int),
            Action::CountRestart("sighup"),
            spawn(6, 2)
        ]
    );
    assert_eq!(
        sim.ev(8.0, Event::Ready(6)),
        [Action::Signal(3, Sig::Int), Action::CountRestart("sighup")]
    );
    assert_eq!(sim.tick(100.0), []);
}

#[test]
fn a_replacement_that_fails_leaves_the_old_worker_serving() {
    let mut sim = ready_pool(1);
    assert_eq!(sim.ev(1.0, Event::Reload), [spawn(2, 0)]);
    // Dies before it is ready: the old worker stays, no new attempt.
    assert_eq!(sim.ev(2.0, Event::Exited(2, exit(1))), []);
    assert_eq!(sim.tick(3.0), []);
    // Never ready: killed after READY_TIMEOUT.
    assert_eq!(sim.ev(4.0, Event::Reload), [spawn(3, 0)]);
    assert_eq!(sim.pool.poll_timeout(), Some(at(4.0) + READY_TIMEOUT));
    assert_eq!(sim.tick(63.9), []);
    assert_eq!(sim.tick(64.0), [Action::Kill(3)]);
    assert_eq!(sim.pool.workers(), 1);
}

#[test]
fn max_requests_jitter_stays_within_its_bounds_and_spreads() {
    let mut p = policy(64);
    p.max_requests = Some(100);
    p.max_requests_jitter = 10;
    let (_, first) = Sim::new(p);
    let limits: Vec<u64> = first
        .iter()
        .filter_map(|a| match a {
            Action::Spawn { max_requests, .. } => *max_requests,
            _ => None,
        })
        .collect();
    assert_eq!(limits.len(), 64);
    assert!(limits.iter().all(|n| (100..=110).contains(n)), "{limits:?}");
    let distinct: std::collections::BTreeSet<_> = limits.iter().collect();
    assert!(distinct.len() >= 5, "{distinct:?}");
}

#[test]
fn a_worker_at_max_requests_is_replaced() {
    let mut sim = ready_pool(1);
    assert_eq!(sim.ev(3.0, Event::WantsRecycle(1)), [spawn(2, 0)]);
    assert_eq!(
        sim.ev(4.0, Event::Ready(2)),
        [
            Action::Signal(1, Sig::Int),
            Action::CountRestart("max_requests")
        ]
    );
}

#[test]
fn lifetime_recycling_comes_within_ten_percent_of_the_lifetime() {
    let mut p = policy(8);
    p.lifetime = Some(Duration::from_secs(100));
    let (mut sim, _) = Sim::new(p);
    sim.ready(0.0, &[1, 2, 3, 4, 5, 6, 7, 8]);
    let first = sim.pool.poll_timeout().expect("a recycling deadline");
    assert!(first >= at(100.0) && first <= at(110.0), "{first:?}");
    assert_eq!(sim.tick(99.9), []);
    let got = sim.tick(110.0);
    // Due, all of them; one replacement at a time.
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(matches!(got[0], Action::Spawn { worker: 9, .. }));
}

#[test]
fn a_worker_above_max_rss_is_replaced() {
    let mut p = policy(2);
    p.max_rss = Some(100 << 20);
    let mut sim = ready_with(p);
    assert_eq!(sim.tick(1.0), [Action::SampleRss(1), Action::SampleRss(2)]);
    assert_eq!(sim.ev(1.0, Event::Rss(1, 50 << 20)), []);
    assert_eq!(sim.ev(1.0, Event::Rss(2, 150 << 20)), [spawn(3, 1)]);
    // Being replaced: not sampled again.
    assert_eq!(sim.tick(2.0), [Action::SampleRss(1)]);
}

#[test]
fn scaling_down_drains_the_last_socket_before_stopping_its_worker() {
    let mut sim = ready_pool(2);
    assert_eq!(
        sim.ev(1.0, Event::Remove),
        [
            Action::Steer(1),
            Action::DetachSocket { slot: 1, worker: 2 }
        ]
    );
    assert_eq!(sim.pool.workers(), 1);
    assert_eq!(sim.tick(1.1), []);
    assert_eq!(sim.tick(1.2), [Action::ProbeQueue(2)]);
    assert_eq!(sim.ev(1.2, Event::QueueLen(2, Some(3))), []);
    assert_eq!(sim.tick(1.3), [Action::ProbeQueue(2)]);
    assert_eq!(
        sim.ev(1.3, Event::QueueLen(2, Some(0))),
        [Action::Signal(2, Sig::Int)]
    );
    assert_eq!(sim.tick(1.4), []);
    assert_eq!(
        sim.ev(2.0, Event::Exited(2, exit(0))),
        [Action::CloseSocket(2)]
    );
    // Never below one worker.
    assert_eq!(sim.ev(3.0, Event::Remove), []);
    assert_eq!(sim.pool.workers(), 1);
}

#[test]
fn a_socket_that_never_drains_is_given_up_after_drain_max() {
    let mut sim = ready_pool(2);
    sim.ev(1.0, Event::Remove);
    sim.tick(1.2);
    assert_eq!(sim.ev(1.2, Event::QueueLen(2, Some(5))), []);
    assert_eq!(
        sim.ev(11.5, Event::QueueLen(2, Some(5))),
        [Action::Signal(2, Sig::Int)]
    );
}

#[test]
fn scaling_up_waits_until_a_removed_socket_is_closed() {
    let mut sim = ready_pool(2);
    sim.ev(1.0, Event::Remove);
    assert_eq!(sim.ev(1.1, Event::Add), []);
    sim.tick(1.2);
    sim.ev(1.2, Event::QueueLen(2, Some(0)));
    assert_eq!(
        sim.ev(1.5, Event::Exited(2, exit(0))),
        [Action::CloseSocket(2), Action::OpenSlot(1)]
    );
    assert_eq!(
        sim.ev(1.5, Event::SlotOpened(1)),
        [spawn(3, 1), Action::Steer(2)]
    );
    assert_eq!(sim.pool.workers(), 2);
    // A socket that cannot be opened: logged, nothing else.
    assert_eq!(sim.ev(2.0, Event::Add), [Action::OpenSlot(2)]);
    assert_eq!(sim.ev(2.0, Event::SlotFailed(2, "in use".into())), []);
    assert_eq!(sim.pool.workers(), 2);
}

#[test]
fn copies_of_one_stop_request_are_one_graceful_stop() {
    let mut sim = ready_pool(2);
    assert_eq!(
        sim.ev(5.0, Event::Stop { drain: true }),
        [Action::Signal(1, Sig::Term), Action::Signal(2, Sig::Term)]
    );
    // The same group signal, forwarded or repeated within the gap.
    assert_eq!(sim.ev(5.0, Event::Stop { drain: true }), []);
    assert_eq!(sim.ev(5.9, Event::Stop { drain: true }), []);
    assert_eq!(sim.ev(6.0, Event::Exited(1, exit(0))), []);
    // A deliberate second request drops the connections of who is left.
    assert_eq!(
        sim.ev(6.5, Event::Stop { drain: true }),
        [Action::Signal(2, Sig::Quit)]
    );
    assert_eq!(sim.ev(7.0, Event::Stop { drain: true }), []);
    assert_eq!(sim.ev(7.5, Event::Exited(2, exit(0))), [Action::Exit(0)]);
}

#[test]
fn the_graceful_timeout_ends_in_sigkill() {
    let mut p = policy(2);
    p.graceful_timeout = Some(Duration::from_secs(3));
    let mut sim = ready_with(p);
    sim.ev(10.0, Event::Stop { drain: true });
    sim.ev(11.0, Event::Exited(1, exit(0)));
    assert_eq!(sim.pool.poll_timeout(), Some(at(18.0)));
    assert_eq!(sim.tick(17.9), []);
    assert_eq!(sim.tick(18.0), [Action::Kill(2), Action::Exit(0)]);
}

#[test]
fn sigint_stops_without_the_drain_delay_and_sigterm_waits_for_it() {
    let mut p = policy(2);
    p.graceful_timeout = Some(Duration::from_secs(3));
    p.drain_delay = Duration::from_secs(10);
    let mut sim = ready_with(p.clone());
    assert_eq!(
        sim.ev(1.0, Event::Stop { drain: false }),
        [Action::Signal(1, Sig::Int), Action::Signal(2, Sig::Int)]
    );
    // No delay: killed after the graceful timeout and the margin only.
    assert_eq!(sim.pool.poll_timeout(), Some(at(9.0)));

    let mut sim = ready_with(p.clone());
    sim.ev(1.0, Event::Stop { drain: true });
    // The end of the delay (systemd's status changes), then the kill.
    assert_eq!(sim.pool.poll_timeout(), Some(at(11.0)));
    assert_eq!(sim.tick(11.0), []);
    assert_eq!(sim.pool.poll_timeout(), Some(at(19.0)));
    assert_eq!(sim.tick(18.9), []);

    let mut sim = ready_with(p);
    sim.ev(1.0, Event::Stop { drain: true });
    // A copy of the group's SIGTERM changes nothing...
    assert_eq!(sim.ev(1.5, Event::Stop { drain: true }), []);
    // ... a SIGINT during the delay ends it, and the timeout counts anew.
    assert_eq!(
        sim.ev(4.0, Event::Stop { drain: false }),
        [Action::Signal(1, Sig::Int), Action::Signal(2, Sig::Int)]
    );
    assert_eq!(sim.pool.poll_timeout(), Some(at(12.0)));
    // A later second stop request still drops connections.
    assert_eq!(
        sim.ev(6.0, Event::Stop { drain: false }),
        [Action::Signal(1, Sig::Quit), Action::Signal(2, Sig::Quit)]
    );
}

#[test]
fn a_sigint_after_the_drain_delay_is_a_second_stop_request() {
    let mut p = policy(1);
    p.graceful_timeout = Some(Duration::from_secs(3));
    p.drain_delay = Duration::from_secs(2);
    let mut sim = ready_with(p);
    sim.ev(1.0, Event::Stop { drain: true });
    sim.tick(3.0);
    // The delay is over (at 3.0): nothing to end, so it drops connections,
    // and the SIGKILL deadline stays.
    assert_eq!(
        sim.ev(3.5, Event::Stop { drain: false }),
        [Action::Signal(1, Sig::Quit)]
    );
    assert_eq!(sim.pool.poll_timeout(), Some(at(11.0)));
}

#[test]
fn a_replaced_worker_stops_without_the_drain_delay() {
    let mut p = policy(1);
    p.drain_delay = Duration::from_secs(30);
    let mut sim = ready_with(p);
    sim.ev(1.0, Event::Reload);
    let got = sim.ev(2.0, Event::Ready(2));
    assert!(got.contains(&Action::Signal(1, Sig::Int)), "{got:?}");
}

#[test]
fn a_stop_reaches_replacements_retiring_and_draining_workers_too() {
    let mut sim = ready_pool(3);
    sim.ev(1.0, Event::Reload); // 4 replaces 1
    sim.ev(2.0, Event::Ready(4)); // 1 retiring, 5 replaces 2
    sim.ev(3.0, Event::Remove); // slot 3 drains, 6 would replace it
    let mut got = sim.ev(4.0, Event::Stop { drain: true });
    got.sort_by_key(|a| format!("{a:?}"));
    let mut want: Vec<Action> = [1, 2, 3, 4, 5]
        .into_iter()
        .map(|id| Action::Signal(id, Sig::Term))
        .collect();
    want.sort_by_key(|a| format!("{a:?}"));
    assert_eq!(got, want);
}

#[test]
fn under_reload_a_change_replaces_and_a_broken_app_waits_for_the_next() {
    let mut p = policy(1);
    p.reload = true;
    let mut sim = ready_with(p);
    // A change: the new code starts beside the old, which stops once the
    // new one is ready.
    assert_eq!(sim.ev(1.0, Event::FileChanged), [spawn(2, 0)]);
    assert_eq!(
        sim.ev(1.5, Event::Ready(2)),
        [Action::Signal(1, Sig::Int), Action::CountRestart("reload")]
    );
    // Code that does not load: the old worker keeps serving.
    assert_eq!(sim.ev(2.0, Event::FileChanged), [spawn(3, 0)]);
    assert_eq!(sim.ev(2.5, Event::Exited(3, exit(WORKER_BOOT_ERROR))), []);
    assert_eq!(sim.tick(3.0), []);
    // The worker itself dies: nothing until the next change, no stop.
    assert_eq!(sim.ev(4.0, Event::Exited(2, exit(WORKER_BOOT_ERROR))), []);
    assert_eq!(sim.tick(10.0), []);
    assert_eq!(sim.ev(11.0, Event::FileChanged), [spawn(4, 0)]);
    assert_eq!(sim.ev(11.5, Event::Ready(4)), []);
}

#[test]
fn ready_is_announced_once_every_first_worker_is_ready() {
    let (mut sim, _) = Sim::new(policy(2));
    assert_eq!(sim.notes(), []);
    sim.ev(0.1, Event::Ready(1));
    assert_eq!(sim.notes(), []);
    sim.ev(0.2, Event::Ready(2));
    assert_eq!(sim.notes(), [Notify::Ready { workers: 2 }]);
    // A worker that dies and is replaced does not make it news again.
    sim.ev(10.0, Event::Exited(1, exit(1)));
    sim.ready(10.5, &[3]);
    assert_eq!(sim.notes(), []);
}

#[test]
fn a_rolling_restart_is_a_reload_until_every_replacement_is_ready() {
    let mut sim = ready_pool(2);
    sim.notes();
    sim.ev(5.0, Event::Reload);
    assert_eq!(sim.notes(), [Notify::Reloading(Reason::Sighup)]);
    // A second SIGHUP meanwhile is the same reload, one that asks for
    // slot 0 again: 3 replaces 1, 4 replaces 3, then 5 replaces 2.
    sim.ev(5.5, Event::Reload);
    sim.ev(6.0, Event::Ready(3));
    sim.ev(7.0, Event::Ready(4));
    assert_eq!(sim.notes(), []);
    sim.ev(8.0, Event::Ready(5));
    assert_eq!(sim.notes(), [Notify::Ready { workers: 2 }]);
}

#[test]
fn a_failed_replacement_ends_the_reload_with_the_old_worker() {
    let mut sim = ready_pool(1);
    sim.notes();
    sim.ev(1.0, Event::Reload);
    sim.ev(2.0, Event::Exited(2, exit(1)));
    assert_eq!(
        sim.notes(),
        [
            Notify::Reloading(Reason::Sighup),
            Notify::Ready { workers: 1 }
        ]
    );
    // Never ready: the same once it is given up.
    sim.ev(3.0, Event::Reload);
    sim.tick(3.0 + READY_TIMEOUT.as_secs_f64());
    assert_eq!(
        sim.notes(),
        [
            Notify::Reloading(Reason::Sighup),
            Notify::Ready { workers: 1 }
        ]
    );
}

#[test]
fn recycling_a_worker_is_not_a_reload() {
    let mut sim = ready_pool(1);
    sim.notes();
    sim.ev(1.0, Event::WantsRecycle(1));
    sim.ev(2.0, Event::Ready(2));
    assert_eq!(sim.notes(), []);
}

#[test]
fn under_reload_a_file_change_is_a_reload() {
    let mut p = policy(1);
    p.reload = true;
    let mut sim = ready_with(p);
    sim.notes();
    sim.ev(1.0, Event::FileChanged);
    sim.ev(1.5, Event::Ready(2));
    // Code that does not load: over as well, the old worker serving.
    sim.ev(2.0, Event::FileChanged);
    sim.ev(2.5, Event::Exited(3, exit(WORKER_BOOT_ERROR)));
    let reload = [
        Notify::Reloading(Reason::FileChange),
        Notify::Ready { workers: 1 },
    ];
    assert_eq!(sim.notes(), [reload, reload].concat());
}

#[test]
fn scaling_changes_the_number_of_workers_announced() {
    let mut sim = ready_pool(1);
    sim.notes();
    sim.ev(1.0, Event::Add);
    sim.ev(1.0, Event::SlotOpened(1));
    assert_eq!(sim.notes(), []);
    sim.ev(1.5, Event::Ready(2));
    assert_eq!(sim.notes(), [Notify::Workers(2)]);
    sim.ev(2.0, Event::Remove);
    assert_eq!(sim.notes(), [Notify::Workers(1)]);
}

#[test]
fn stopping_is_announced_as_the_stop_begins_before_the_drain_delay() {
    let mut p = policy(2);
    p.drain_delay = Duration::from_secs(10);
    let mut sim = ready_with(p.clone());
    sim.notes();
    // Before the workers hear of it.
    sim.pool.handle(Event::Stop { drain: true }, at(1.0));
    assert_eq!(
        sim.pool.poll_action(),
        Some(Action::Notify(Notify::Stopping { draining: true }))
    );
    sim.take();
    sim.tick(10.9);
    assert_eq!(sim.notes(), []);
    sim.tick(11.0);
    assert_eq!(sim.notes(), [Notify::Drained]);
    // Nothing more, not even a worker becoming ready.
    sim.ev(11.5, Event::Ready(1));
    sim.ev(12.0, Event::Exited(1, exit(0)));
    assert_eq!(sim.notes(), []);

    // SIGINT ends the delay; a stop without one is simply stopping.
    let mut sim = ready_with(p);
    sim.notes();
    sim.ev(1.0, Event::Stop { drain: true });
    sim.ev(2.0, Event::Stop { drain: false });
    assert_eq!(
        sim.notes(),
        [Notify::Stopping { draining: true }, Notify::Drained]
    );
    let mut sim = ready_pool(1);
    sim.notes();
    sim.ev(1.0, Event::Stop { drain: true });
    assert_eq!(sim.notes(), [Notify::Stopping { draining: false }]);
}

#[test]
fn a_hung_worker_has_its_stacks_written_then_is_killed_and_replaced() {
    let mut p = policy(2);
    p.hung_timeout = Some(Duration::from_secs(2));
    let mut sim = ready_with(p);
    // Worker 1 keeps saying it is alive; worker 2 falls silent after 0.1.
    assert_eq!(sim.ev(1.0, Event::Alive(1)), []);
    assert_eq!(sim.ev(2.0, Event::Alive(1)), []);
    assert_eq!(sim.pool.poll_timeout(), Some(at(2.1)));
    assert_eq!(sim.tick(2.0), []);
    assert_eq!(sim.tick(2.1), [Action::Signal(2, Sig::DumpStacks)]);
    // It gets a moment to write them, then goes; a new worker takes the
    // slot, and the restart is counted as hung.
    assert_eq!(sim.pool.poll_timeout(), Some(at(2.6)));
    assert_eq!(sim.tick(2.5), []);
    assert_eq!(
        sim.tick(2.6),
        [
            Action::Kill(2),
            Action::CountRestart("hung"),
            Action::Spawn {
                worker: 3,
                slot: 1,
                max_requests: None
            }
        ]
    );
    // Worker 1 is fine all along; the new one is watched once ready.
    assert_eq!(sim.ev(3.0, Event::Alive(1)), []);
    assert_eq!(sim.ev(3.5, Event::Ready(3)), []);
    assert_eq!(sim.ev(4.5, Event::Alive(1)), []);
    assert_eq!(sim.tick(5.4), []);
    assert_eq!(sim.tick(5.5), [Action::Signal(3, Sig::DumpStacks)]);
}

#[test]
fn without_the_healthcheck_silence_is_fine_and_booting_workers_are_not_judged() {
    let mut sim = ready_pool(1);
    assert_eq!(sim.tick(1000.0), []);
    let mut p = policy(1);
    p.hung_timeout = Some(Duration::from_secs(1));
    let (mut sim, _) = Sim::new(p);
    // Not ready yet (importing the app, lifespan startup): not judged.
    assert_eq!(sim.tick(30.0), []);
}
