//! The systems under comparison and the driver that alternates them.

use crate::measurement::Measurement;
use crate::report::Outcome;
use crate::scenario::{Scenario, ScenarioConfig};

/// A client/server pair that can run the benchmark scenarios.
///
/// `compare` runs every selected system on the same [`ScenarioConfig`],
/// alternating them round by round; a system that cannot run here says why
/// through [`System::available`] and is reported as skipped.
pub trait System {
    /// The name used by `--systems` and in the reports.
    fn name(&self) -> &'static str;

    /// Whether the system can run on this machine.
    ///
    /// # Errors
    ///
    /// Why it cannot, in one line.
    fn available(&self) -> Result<(), String>;

    /// Whether the system can run `scenario` (all of them unless it says
    /// otherwise); a scenario it cannot run is reported as skipped.
    ///
    /// # Errors
    ///
    /// Why it cannot, in one line.
    fn supports(&self, scenario: Scenario) -> Result<(), String> {
        let _ = scenario;
        Ok(())
    }

    /// Runs one scenario once, client and server each pinned to its own cores.
    ///
    /// # Errors
    ///
    /// Why the run failed, in one line.
    fn run(&self, config: &ScenarioConfig) -> Result<Measurement, String>;
}

/// Every system this build knows, in report order.
pub fn all_systems() -> Vec<Box<dyn System>> {
    vec![
        Box::new(crate::mtcp_peer::MtcpSystem::new()),
        Box::new(crate::tokio_peer::TokioSystem::new()),
        Box::new(crate::monoio_peer::MonoioSystem::new()),
        Box::new(crate::smoltcp_peer::SmoltcpSystem::new()),
    ]
}

/// Keeps the systems named in `names` (in that order), or all when `None`.
///
/// # Errors
///
/// A message naming an unknown or repeated system.
pub fn select(
    systems: Vec<Box<dyn System>>,
    names: Option<&[String]>,
) -> Result<Vec<Box<dyn System>>, String> {
    let Some(names) = names else {
        return Ok(systems);
    };
    let known: Vec<&'static str> = systems.iter().map(|s| s.name()).collect();
    let mut slots: Vec<Option<Box<dyn System>>> = systems.into_iter().map(Some).collect();
    let mut picked = Vec::with_capacity(names.len());
    for name in names {
        let Some(i) = known.iter().position(|k| k == name) else {
            return Err(format!(
                "unknown system `{name}`, expected one of {}",
                known.join(", ")
            ));
        };
        let system = slots[i]
            .take()
            .ok_or_else(|| format!("system `{name}` named twice"))?;
        picked.push(system);
    }
    Ok(picked)
}

/// Runs `config` on every system `rounds` times, alternating the systems
/// (forward on even rounds, backward on odd ones, so neither always runs
/// first), and returns one outcome per system: the median of its rounds,
/// or why it was skipped or failed. `progress` is told what starts.
pub fn compare(
    systems: &[Box<dyn System>],
    config: &ScenarioConfig,
    rounds: usize,
    progress: &mut dyn FnMut(&str),
) -> Vec<Outcome> {
    /// A system's progress through the rounds.
    enum State {
        Running(Vec<Measurement>),
        Done(Outcome),
    }
    let mut states: Vec<State> = systems
        .iter()
        .map(
            |s| match s.available().and_then(|()| s.supports(config.scenario)) {
                Ok(()) => State::Running(Vec::new()),
                Err(reason) => State::Done(Outcome::Skipped {
                    system: s.name().to_string(),
                    reason,
                }),
            },
        )
        .collect();
    for round in 0..rounds {
        let order: Vec<usize> = if round % 2 == 0 {
            (0..systems.len()).collect()
        } else {
            (0..systems.len()).rev().collect()
        };
        for i in order {
            let State::Running(done) = &mut states[i] else {
                continue;
            };
            let system = &systems[i];
            progress(&format!(
                "{} {} conns={} round {}/{}",
                system.name(),
                config.scenario,
                config.conns,
                round + 1,
                rounds
            ));
            match system.run(config) {
                Ok(m) => done.push(m),
                Err(error) => {
                    states[i] = State::Done(Outcome::Failed {
                        system: system.name().to_string(),
                        error,
                    })
                }
            }
        }
    }
    states
        .into_iter()
        .zip(systems)
        .map(|(state, s)| match state {
            State::Running(done) => Measurement::median(&done).map_or_else(
                || Outcome::Failed {
                    system: s.name().to_string(),
                    error: "no round produced a measurement".into(),
                },
                Outcome::Ran,
            ),
            State::Done(outcome) => outcome,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measurement::Metrics;
    use std::cell::RefCell;

    /// A system whose numbers come from a list, to test the driver.
    struct Scripted {
        name: &'static str,
        missing: Option<&'static str>,
        results: RefCell<Vec<Result<f64, &'static str>>>,
    }

    thread_local! {
        static LOG: RefCell<Vec<&'static str>> = const { RefCell::new(Vec::new()) };
    }

    impl System for Scripted {
        fn name(&self) -> &'static str {
            self.name
        }
        fn available(&self) -> Result<(), String> {
            self.missing.map_or(Ok(()), |m| Err(m.to_string()))
        }
        fn run(&self, config: &ScenarioConfig) -> Result<Measurement, String> {
            LOG.with(|l| l.borrow_mut().push(self.name));
            let gbit = self
                .results
                .borrow_mut()
                .remove(0)
                .map_err(str::to_string)?;
            Ok(Measurement {
                system: self.name.to_string(),
                cores: config.cores,
                conns: 1,
                size: config.size,
                seconds: 1.0,
                rounds: 1,
                metrics: Metrics::Bulk { gbit_per_s: gbit },
            })
        }
    }

    fn scripted(
        name: &'static str,
        missing: Option<&'static str>,
        results: Vec<Result<f64, &'static str>>,
    ) -> Box<dyn System> {
        Box::new(Scripted {
            name,
            missing,
            results: RefCell::new(results),
        })
    }

    #[test]
    fn alternates_and_takes_medians() {
        LOG.with(|l| l.borrow_mut().clear());
        let systems = vec![
            scripted("a", None, vec![Ok(1.0), Ok(9.0), Ok(5.0)]),
            scripted("b", None, vec![Ok(2.0), Ok(4.0), Ok(3.0)]),
            scripted("c", Some("not here"), vec![]),
        ];
        let config = ScenarioConfig::new(Scenario::Bulk);
        let mut seen = Vec::new();
        let outcomes = compare(&systems, &config, 3, &mut |p| seen.push(p.to_string()));
        assert_eq!(
            LOG.with(|l| l.borrow().clone()),
            ["a", "b", "b", "a", "a", "b"]
        );
        assert_eq!(seen.len(), 6);
        assert_eq!(seen[0], "a bulk conns=1 round 1/3");
        let gbit = |o: &Outcome| match o {
            Outcome::Ran(Measurement {
                metrics: Metrics::Bulk { gbit_per_s },
                rounds: 3,
                ..
            }) => *gbit_per_s,
            other => panic!("{other:?}"),
        };
        assert_eq!(gbit(&outcomes[0]), 5.0);
        assert_eq!(gbit(&outcomes[1]), 3.0);
        assert_eq!(
            outcomes[2],
            Outcome::Skipped {
                system: "c".into(),
                reason: "not here".into()
            }
        );
    }

    #[test]
    fn a_failed_round_fails_the_system_only() {
        let systems = vec![
            scripted("a", None, vec![Ok(1.0), Err("boom")]),
            scripted("b", None, vec![Ok(2.0), Ok(2.0)]),
        ];
        let outcomes = compare(
            &systems,
            &ScenarioConfig::new(Scenario::Bulk),
            2,
            &mut |_| {},
        );
        assert_eq!(
            outcomes[0],
            Outcome::Failed {
                system: "a".into(),
                error: "boom".into()
            }
        );
        assert!(matches!(outcomes[1], Outcome::Ran(_)));
    }

    #[test]
    fn selection_by_name() {
        let all = || vec![scripted("a", None, vec![]), scripted("b", None, vec![])];
        let names = |v: &[Box<dyn System>]| v.iter().map(|s| s.name()).collect::<Vec<_>>();
        assert_eq!(names(&select(all(), None).unwrap()), ["a", "b"]);
        assert_eq!(
            names(&select(all(), Some(&["b".into(), "a".into()])).unwrap()),
            ["b", "a"]
        );
        assert_eq!(
            select(all(), Some(&["x".into()])).err().unwrap(),
            "unknown system `x`, expected one of a, b"
        );
        assert_eq!(
            select(all(), Some(&["a".into(), "a".into()]))
                .err()
                .unwrap(),
            "system `a` named twice"
        );
        assert_eq!(
            names(&all_systems()),
            ["mtcp", "tokio", "monoio", "smoltcp"]
        );
    }
}
