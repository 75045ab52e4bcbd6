//! Notification that starts after the master: a master whose shared database does not answer
//! at start cannot load its silences and notification log yet, but must serve anyway (see
//! [`crate::fleet`]). Its engine gets a [`LatePublisher`]; [`start_when_reachable`] starts the
//! dispatcher once the database answers and hands it over. Nothing is lost meanwhile: without a
//! database this master does not lead, so it evaluates nothing.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use atlhyper_model::Alert;
use atlhyper_store::NotifyStore;
use chrono::{DateTime, Utc};

use super::{Dispatcher, NotifyConfig, NotifyError};
use crate::Master;
use crate::alerting::AlertPublisher;

/// How often starting the dispatcher is tried again.
const RETRY_EVERY: Duration = Duration::from_secs(1);

/// The engine's publisher until the dispatcher exists: drops what it is given before, hands
/// it to the dispatcher after.
#[derive(Debug, Default)]
pub(crate) struct LatePublisher(OnceLock<Dispatcher>);

impl AlertPublisher for LatePublisher {
    fn publish(&self, evaluated_at: DateTime<Utc>, alerts: Vec<Alert>) {
        if let Some(dispatcher) = self.0.get() {
            dispatcher.publish(evaluated_at, alerts);
        }
    }
}

/// Tries to start the dispatcher every second until the store answers, then attaches it to
/// `master` and `late`. Gives up at shutdown, or on an error that waiting does not cure.
pub(crate) async fn start_when_reachable(
    master: Master,
    config: NotifyConfig,
    store: Arc<dyn NotifyStore>,
    late: Arc<LatePublisher>,
) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(RETRY_EVERY) => {}
            () = master.shutdown.cancelled() => return,
        }
        match Dispatcher::start(config.clone(), store.clone()).await {
            Ok(dispatcher) => {
                if master.shutdown.is_cancelled() {
                    dispatcher.stop().await;
                    return;
                }
                let _ = late.0.set(dispatcher.clone());
                master.set_notifications(dispatcher);
                tracing::info!("alert notification started");
                return;
            }
            Err(NotifyError::Store(_)) => {}
            Err(e) => {
                tracing::error!(error = %e, "alert notification cannot start");
                return;
            }
        }
    }
}
