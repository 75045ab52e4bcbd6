//! Silences: operator-made mutes by label matchers and a time window, kept in the store and in
//! memory (compiled), so the dispatcher and `GET /api/v2/alerts` ask without touching the store.

use std::sync::Arc;

use atlhyper_model::Labels;
use atlhyper_store::{NotifyStore, Silence, SilenceMatcher, StoreError};
use chrono::{DateTime, Utc};
use parking_lot::RwLock;

use super::matcher::Matcher;

/// Most matchers one silence may have.
pub const MAX_SILENCE_MATCHERS: usize = 64;
/// Longest `created_by`, bytes.
pub const MAX_CREATED_BY: usize = 256;
/// Longest `comment`, bytes.
pub const MAX_COMMENT: usize = 4096;
/// Most silences not yet expired (active or pending); one more is refused (409).
pub const MAX_ACTIVE_SILENCES: usize = 10_000;
/// Most silences kept in all, expired ones included: past it the oldest expired ones are
/// forgotten before their retention, so expiring and creating in a loop cannot grow memory.
pub const MAX_KEPT_SILENCES: usize = 2 * MAX_ACTIVE_SILENCES;

/// Where a silence is in its window at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SilenceState {
    /// Starts later.
    Pending,
    /// Mutes now.
    Active,
    /// Ended.
    Expired,
}

impl SilenceState {
    /// The state of `silence` at `now`.
    pub fn of(silence: &Silence, now: DateTime<Utc>) -> Self {
        if now >= silence.ends_at {
            Self::Expired
        } else if now < silence.starts_at {
            Self::Pending
        } else {
            Self::Active
        }
    }
}

/// A silence asked for through the API, before it has an id.
#[derive(Debug, Clone)]
pub struct NewSilence {
    /// All must match.
    pub matchers: Vec<SilenceMatcher>,
    /// Start (now when earlier than now).
    pub starts_at: DateTime<Utc>,
    /// End.
    pub ends_at: DateTime<Utc>,
    /// Who.
    pub created_by: String,
    /// Why.
    pub comment: String,
}

/// Why a silence was refused or could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum SilenceError {
    /// The request is wrong; the message names the field.
    #[error("{0}")]
    Invalid(String),
    /// [`MAX_ACTIVE_SILENCES`] are active or pending already.
    #[error(
        "silence limit reached: {0} silences are active or pending, at most {MAX_ACTIVE_SILENCES}; expire some first"
    )]
    Limit(usize),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Checks a requested silence: returns its compiled matchers, or an error naming the field.
pub fn check(new: &NewSilence, now: DateTime<Utc>) -> Result<Vec<Matcher>, SilenceError> {
    let invalid = |m: String| SilenceError::Invalid(m);
    if new.matchers.is_empty() {
        return Err(invalid("matchers: at least one matcher is needed".into()));
    }
    if new.matchers.len() > MAX_SILENCE_MATCHERS {
        return Err(invalid(format!(
            "matchers: {} matchers, at most {MAX_SILENCE_MATCHERS}",
            new.matchers.len()
        )));
    }
    let compiled = new
        .matchers
        .iter()
        .enumerate()
        .map(|(i, m)| {
            Matcher::from_silence(m).map_err(|why| invalid(format!("matchers[{i}]: {why}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    // As Alertmanager: a silence whose matchers all match the empty label set would mute every
    // alert; one matcher at least must require something.
    if compiled.iter().all(|m| m.matches(&Labels::new())) {
        return Err(invalid(
            "matchers: at least one matcher must not match the empty string (it would silence everything)".into(),
        ));
    }
    if new.ends_at <= new.starts_at {
        return Err(invalid("ends_at: must be after starts_at".into()));
    }
    if new.ends_at <= now {
        return Err(invalid("ends_at: is in the past".into()));
    }
    if new.created_by.trim().is_empty() {
        return Err(invalid("created_by: required".into()));
    }
    if new.created_by.len() > MAX_CREATED_BY {
        return Err(invalid(format!(
            "created_by: longer than {MAX_CREATED_BY} bytes"
        )));
    }
    if new.comment.len() > MAX_COMMENT {
        return Err(invalid(format!("comment: longer than {MAX_COMMENT} bytes")));
    }
    Ok(compiled)
}

/// A stored silence with its matchers compiled.
#[derive(Debug, Clone)]
struct Compiled {
    silence: Silence,
    matchers: Vec<Matcher>,
}

/// Every silence, in memory and in the store.
pub struct Silences {
    store: Arc<dyn NotifyStore>,
    all: RwLock<Vec<Compiled>>,
    /// Serializes creation, so the limits hold under concurrent requests.
    creating: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Silences {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Silences")
            .field("count", &self.all.read().len())
            .finish_non_exhaustive()
    }
}

impl Silences {
    /// Loads the stored silences. A stored matcher that no longer compiles (written by another
    /// build) is skipped with a warning rather than refusing to start.
    pub async fn load(store: Arc<dyn NotifyStore>) -> Result<Self, StoreError> {
        let mut all = Vec::new();
        for silence in store.list_silences().await? {
            match silence
                .matchers
                .iter()
                .map(Matcher::from_silence)
                .collect::<Result<Vec<_>, _>>()
            {
                Ok(matchers) => all.push(Compiled { silence, matchers }),
                Err(why) => tracing::warn!(id = %silence.id, %why, "stored silence skipped"),
            }
        }
        Ok(Self {
            store,
            all: RwLock::new(all),
            creating: tokio::sync::Mutex::new(()),
        })
    }

    /// Stores a new silence (after [`check`]) and returns it with its id.
    pub async fn create(
        &self,
        new: NewSilence,
        now: DateTime<Utc>,
    ) -> Result<Silence, SilenceError> {
        let matchers = check(&new, now)?;
        let _creating = self.creating.lock().await;
        let open = self
            .all
            .read()
            .iter()
            .filter(|c| SilenceState::of(&c.silence, now) != SilenceState::Expired)
            .count();
        if open >= MAX_ACTIVE_SILENCES {
            return Err(SilenceError::Limit(open));
        }
        self.make_room(now).await?;
        let silence = Silence {
            id: uuid::Uuid::new_v4().to_string(),
            matchers: new.matchers,
            starts_at: new.starts_at.max(now),
            ends_at: new.ends_at,
            created_by: new.created_by,
            comment: new.comment,
            updated_at: now,
        };
        self.store.put_silence(&silence).await?;
        self.all.write().push(Compiled {
            silence: silence.clone(),
            matchers,
        });
        Ok(silence)
    }

    /// Past [`MAX_KEPT_SILENCES`], forgets the oldest expired silences (memory and store) so
    /// one more fits. There is always one to forget: at most [`MAX_ACTIVE_SILENCES`] are not
    /// expired when this runs.
    async fn make_room(&self, now: DateTime<Utc>) -> Result<(), StoreError> {
        let cutoff = {
            let all = self.all.read();
            if all.len() < MAX_KEPT_SILENCES {
                return Ok(());
            }
            let mut ended: Vec<DateTime<Utc>> = all
                .iter()
                .map(|c| c.silence.ends_at)
                .filter(|&end| end <= now)
                .collect();
            ended.sort_unstable();
            let excess = all.len() + 1 - MAX_KEPT_SILENCES;
            match ended.get(excess - 1) {
                // `prune` keeps what ended at or after its cutoff: one tick past the newest
                // end to forget.
                Some(&last) => last + chrono::TimeDelta::nanoseconds(1),
                None => return Ok(()),
            }
        };
        let forgotten = self.prune(cutoff).await?;
        tracing::info!(
            forgotten,
            "expired silences forgotten early: {MAX_KEPT_SILENCES} kept at most"
        );
        Ok(())
    }

    /// Ends a silence now; `None` when there is no such silence. An expired one stays as it is.
    pub async fn expire(
        &self,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Silence>, StoreError> {
        let Some(mut silence) = self.get(id) else {
            return Ok(None);
        };
        if SilenceState::of(&silence, now) == SilenceState::Expired {
            return Ok(Some(silence));
        }
        silence.ends_at = now;
        silence.starts_at = silence.starts_at.min(now);
        silence.updated_at = now;
        self.store.put_silence(&silence).await?;
        if let Some(c) = self.all.write().iter_mut().find(|c| c.silence.id == id) {
            c.silence = silence.clone();
        }
        Ok(Some(silence))
    }

    /// The silence with this id.
    pub fn get(&self, id: &str) -> Option<Silence> {
        self.all
            .read()
            .iter()
            .find(|c| c.silence.id == id)
            .map(|c| c.silence.clone())
    }

    /// Every silence, by start then id.
    pub fn list(&self) -> Vec<Silence> {
        let mut all: Vec<Silence> = self.all.read().iter().map(|c| c.silence.clone()).collect();
        all.sort_by(|a, b| a.starts_at.cmp(&b.starts_at).then_with(|| a.id.cmp(&b.id)));
        all
    }

    /// Ids of the silences that mute an alert with these labels at `now`.
    pub fn silenced_by(&self, labels: &Labels, now: DateTime<Utc>) -> Vec<String> {
        self.all
            .read()
            .iter()
            .filter(|c| SilenceState::of(&c.silence, now) == SilenceState::Active)
            .filter(|c| c.matchers.iter().all(|m| m.matches(labels)))
            .map(|c| c.silence.id.clone())
            .collect()
    }

    /// Forgets silences that ended before `before` (memory and store).
    pub async fn prune(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let n = self.store.prune_silences(before).await?;
        self.all.write().retain(|c| c.silence.ends_at >= before);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use atlhyper_store::MemoryStore;
    use chrono::TimeDelta;

    fn m(name: &str, value: &str, is_regex: bool, is_equal: bool) -> SilenceMatcher {
        SilenceMatcher {
            name: name.into(),
            value: value.into(),
            is_regex,
            is_equal,
        }
    }

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn new(matchers: Vec<SilenceMatcher>, now: DateTime<Utc>) -> NewSilence {
        NewSilence {
            matchers,
            starts_at: now,
            ends_at: now + TimeDelta::hours(1),
            created_by: "ops".into(),
            comment: "maintenance".into(),
        }
    }

    #[tokio::test]
    async fn mutes_matching_alerts_in_its_window_only() {
        let store = Arc::new(MemoryStore::new());
        let silences = Silences::load(store.clone()).await.unwrap();
        let now = Utc::now();
        let s = silences
            .create(
                new(
                    vec![
                        m("alertname", "HighCpu", false, true),
                        m("node", "worker-[12]", true, true),
                    ],
                    now,
                ),
                now,
            )
            .await
            .unwrap();
        let hit = labels(&[("alertname", "HighCpu"), ("node", "worker-1")]);
        let miss = labels(&[("alertname", "HighCpu"), ("node", "worker-3")]);
        assert_eq!(silences.silenced_by(&hit, now), [s.id.as_str()]);
        assert!(silences.silenced_by(&miss, now).is_empty());
        assert!(
            silences
                .silenced_by(&hit, now - TimeDelta::seconds(1))
                .is_empty()
        );
        assert!(
            silences
                .silenced_by(&hit, now + TimeDelta::hours(2))
                .is_empty()
        );

        // Expiry ends the muting and is persisted: a reload sees it.
        let later = now + TimeDelta::minutes(5);
        let expired = silences.expire(&s.id, later).await.unwrap().unwrap();
        assert_eq!(expired.ends_at, later);
        assert!(silences.silenced_by(&hit, later).is_empty());
        let again = Silences::load(store).await.unwrap();
        assert_eq!(again.get(&s.id).unwrap().ends_at, later);
        assert!(silences.expire("nope", later).await.unwrap().is_none());
    }

    #[test]
    fn refuses_bad_silences_naming_the_field() {
        let now = Utc::now();
        let cases = [
            (new(vec![], now), "matchers:"),
            (new(vec![m("node", "(", true, true)], now), "matchers[0]"),
            (new(vec![m("node", ".*", true, true)], now), "empty string"),
            (new(vec![m("node", "x", false, false)], now), "empty string"),
            (
                NewSilence {
                    ends_at: now - TimeDelta::hours(2),
                    starts_at: now - TimeDelta::hours(3),
                    ..new(vec![m("node", "x", false, true)], now)
                },
                "ends_at: is in the past",
            ),
            (
                NewSilence {
                    ends_at: now,
                    starts_at: now + TimeDelta::hours(1),
                    ..new(vec![m("node", "x", false, true)], now)
                },
                "ends_at: must be after",
            ),
            (
                NewSilence {
                    created_by: " ".into(),
                    ..new(vec![m("node", "x", false, true)], now)
                },
                "created_by",
            ),
        ];
        for (silence, field) in cases {
            let err = check(&silence, now).unwrap_err().to_string();
            assert!(err.contains(field), "{field}: {err}");
        }
    }
}
