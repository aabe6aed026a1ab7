//! [`Dedicated`]: a thread of its own running a current-thread tokio runtime, for the subjects
//! measured in that configuration (stock tarpc's best: current-thread server and client, where
//! no call crosses a thread). A subject's connections are opened and driven there, one job at a
//! time; between jobs nothing runs, as in a program whose only thread waits on its calls.

use std::sync::mpsc;

use anyhow::Context as _;

type Job = Box<dyn FnOnce(&tokio::runtime::Runtime) + Send>;

/// A thread with a current-thread runtime; ends when dropped.
#[derive(Debug)]
pub struct Dedicated {
    jobs: mpsc::Sender<Job>,
}

impl Dedicated {
    /// Starts the thread.
    pub fn start(name: &str) -> anyhow::Result<Dedicated> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start a current-thread runtime")?;
        let (jobs, queue) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                for job in queue {
                    job(&runtime);
                }
            })
            .context("cannot start a thread")?;
        Ok(Dedicated { jobs })
    }

    /// Runs the future `make` makes to completion on the thread, and returns its output.
    pub async fn run<F, T>(&self, make: impl FnOnce() -> F + Send + 'static) -> anyhow::Result<T>
    where
        F: Future<Output = T>,
        T: Send + 'static,
    {
        let (done, output) = tokio::sync::oneshot::channel();
        self.jobs
            .send(Box::new(move |runtime| {
                let _ = done.send(runtime.block_on(make()));
            }))
            .ok()
            .context("the current-thread runtime's thread has ended")?;
        output
            .await
            .context("a job on the current-thread runtime panicked")
    }
}
