//! What calls cost and how much may be spent.
//!
//! - [`PriceTable`]: the registry's dated prices ([`domain::PRICES_CHECKED`])
//!   with the config file's `[prices]` applied; [`Service::estimate_cost`]
//!   prices a call ([`Priced`]) before it is made.
//! - [`Budget`]: the daily and monthly caps (`MCP_BUDGET_DAILY_USD`,
//!   `MCP_BUDGET_MONTHLY_USD`). A call reserves its estimate before any
//!   backend request and settles to what it cost when it ends, all under
//!   one mutex, so calls running together cannot pass a cap together.
//!   "Today" and "this month" are UTC.
//!
//! Every figure is an estimate from a price list, not a bill.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};

use super::{Service, ServiceError};
use crate::backend::BackendError;
use crate::config::{PriceOverride, SpendSettings};
use crate::contract::ModelPrice;
use crate::domain::{self, ImageSize};
use crate::store::{Cap, HoldKey, Outcome, UsageEntry, UsageLedger};

/// A call to price.
#[derive(Debug, Clone, PartialEq)]
pub enum Priced {
    /// `count` images of `model` at `size` (a batch: one per prompt).
    Image {
        model: String,
        size: ImageSize,
        count: u32,
    },
    /// `seconds` of video of `model` at `resolution` (`720p`, `1080p`, `4k`…).
    Video {
        model: String,
        resolution: String,
        seconds: f64,
    },
}

/// US dollars rounded to a millionth, so sums of estimates print cleanly.
pub fn round_usd(usd: f64) -> f64 {
    (usd * 1e6).round() / 1e6
}

/// The price table: the registry's figures with the config's overrides.
#[derive(Debug, Clone)]
pub struct PriceTable {
    images: HashMap<&'static str, Vec<(ImageSize, f64)>>,
    videos: HashMap<&'static str, Vec<(&'static str, f64)>>,
    /// Models with a figure from the config file.
    configured: Vec<&'static str>,
}

impl Default for PriceTable {
    fn default() -> Self {
        Self::new(&[])
    }
}

impl PriceTable {
    /// The built-in table with `overrides` applied figure by figure.
    pub fn new(overrides: &[PriceOverride]) -> Self {
        let mut images: HashMap<_, _> = domain::IMAGE_MODELS
            .iter()
            .map(|m| (m.id, m.price_per_image.to_vec()))
            .collect();
        let mut videos: HashMap<_, _> = domain::VIDEO_MODELS
            .iter()
            .map(|m| (m.id, m.price_per_second.to_vec()))
            .collect();
        let mut configured = Vec::new();
        for o in overrides {
            configured.push(o.model);
            if let Some(table) = images.get_mut(o.model) {
                for (size, usd) in &o.per_image_usd {
                    table.retain(|(s, _)| s != size);
                    table.push((*size, *usd));
                }
            }
            if let Some(table) = videos.get_mut(o.model) {
                for (res, usd) in &o.per_second_usd {
                    table.retain(|(r, _)| r != res);
                    table.push((*res, *usd));
                }
            }
        }
        Self {
            images,
            videos,
            configured,
        }
    }

    /// USD per image of `model` at `size`.
    pub fn per_image(&self, model: &str, size: ImageSize) -> Option<f64> {
        self.images
            .get(model)?
            .iter()
            .find(|(s, _)| *s == size)
            .map(|(_, usd)| *usd)
    }

    /// USD per second of `model`'s video at `resolution`.
    pub fn per_second(&self, model: &str, resolution: &str) -> Option<f64> {
        self.videos
            .get(model)?
            .iter()
            .find(|(r, _)| r.eq_ignore_ascii_case(resolution))
            .map(|(_, usd)| *usd)
    }

    /// What `what` costs, in USD; `None` when the model has no price for it.
    pub fn estimate(&self, what: &Priced) -> Option<f64> {
        let usd = match what {
            Priced::Image { model, size, count } => {
                self.per_image(model, *size)? * f64::from(*count)
            }
            Priced::Video {
                model,
                resolution,
                seconds,
            } => self.per_second(model, resolution)? * seconds.max(0.0),
        };
        Some(round_usd(usd))
    }

    /// The price `list_models` shows for `model`; `None` without any figure.
    pub fn model_price(&self, model: &str) -> Option<ModelPrice> {
        let configured = self.configured.contains(&model);
        let checked = domain::PRICES_CHECKED.to_owned();
        if let Some(table) = self.images.get(model).filter(|t| !t.is_empty()) {
            let map: BTreeMap<String, f64> = table
                .iter()
                .map(|(s, usd)| (s.as_str().to_owned(), *usd))
                .collect();
            return Some(ModelPrice {
                per_image_usd: Some(map),
                per_second_usd: None,
                checked,
                configured,
            });
        }
        let table = self.videos.get(model).filter(|t| !t.is_empty())?;
        Some(ModelPrice {
            per_image_usd: None,
            per_second_usd: Some(
                table
                    .iter()
                    .map(|(r, usd)| ((*r).to_owned(), *usd))
                    .collect(),
            ),
            checked,
            configured,
        })
    }
}

/// Which cap a call would pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    /// The UTC day.
    Day,
    /// The UTC calendar month.
    Month,
}

impl Period {
    /// How the period is named in messages.
    pub fn noun(self) -> &'static str {
        match self {
            Self::Day => "daily",
            Self::Month => "monthly",
        }
    }

    /// The environment variable and config key that set its cap.
    pub fn setting(self) -> (&'static str, &'static str) {
        match self {
            Self::Day => ("MCP_BUDGET_DAILY_USD", "budget_daily_usd"),
            Self::Month => ("MCP_BUDGET_MONTHLY_USD", "budget_monthly_usd"),
        }
    }

    fn so_far(self) -> &'static str {
        match self {
            Self::Day => "today (UTC)",
            Self::Month => "this month (UTC)",
        }
    }
}

/// A refusal: the call's estimate on top of what is spent and held would
/// pass `cap`.
#[derive(Debug, Clone, PartialEq)]
pub struct OverBudget {
    pub period: Period,
    /// Settled spend of the period.
    pub spent: f64,
    /// Estimates of calls still running.
    pub held: f64,
    /// This call's estimate.
    pub estimate: f64,
    pub cap: f64,
}

impl OverBudget {
    /// The message: spend so far, the cap, how to raise it.
    pub fn message(&self) -> String {
        let (var, key) = self.period.setting();
        let running = match self.held > 0.0 {
            true => format!(" (plus ${:.2} held by calls still running)", self.held),
            false => String::new(),
        };
        format!(
            "this call (estimated ${:.2}) would pass the {} budget of ${:.2}: ${:.2} spent {}{running}; \
raise `{var}` (or `{key}` in the config file), or wait for the next {} (UTC); figures are estimates",
            self.estimate,
            self.period.noun(),
            self.cap,
            self.spent,
            self.period.so_far(),
            match self.period {
                Period::Day => "day",
                Period::Month => "month",
            },
        )
    }
}

/// What the budget knows: the settled spend of the current UTC day and
/// month (from the ledger, kept up to date by every settle) and the
/// estimates held by calls still running.
#[derive(Debug, Default)]
struct Tally {
    day: Option<NaiveDate>,
    spent_day: f64,
    spent_month: f64,
    holds: HashMap<u64, f64>,
    next: u64,
}

impl Tally {
    /// Starts a new day (and month) when `now` is past the one tallied.
    fn roll(&mut self, now: DateTime<Utc>) {
        let today = now.date_naive();
        match self.day {
            Some(d) if d == today => {}
            Some(d) if d.year() == today.year() && d.month() == today.month() => {
                self.spent_day = 0.0;
            }
            _ => {
                self.spent_day = 0.0;
                self.spent_month = 0.0;
            }
        }
        self.day = Some(today);
    }

    fn held(&self) -> f64 {
        self.holds.values().sum()
    }
}

/// The budget state of `get_usage`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BudgetState {
    pub daily_usd: Option<f64>,
    pub monthly_usd: Option<f64>,
    pub spent_today: f64,
    pub spent_month: f64,
}

/// The caps and the reservations against them. Every method is short and
/// takes one mutex; none waits on anything else.
#[derive(Debug, Default)]
pub struct Budget {
    daily: Option<f64>,
    monthly: Option<f64>,
    tally: Mutex<Tally>,
}

/// An estimate held against the caps until the call settles.
#[derive(Debug, PartialEq, Eq, Hash, Clone, Copy)]
pub struct HoldId(u64);

impl Budget {
    pub fn new(daily: Option<f64>, monthly: Option<f64>) -> Self {
        Self {
            daily,
            monthly,
            tally: Mutex::default(),
        }
    }

    /// Whether any cap is set.
    pub fn is_capped(&self) -> bool {
        self.daily.is_some() || self.monthly.is_some()
    }

    fn tally(&self) -> std::sync::MutexGuard<'_, Tally> {
        // A panic while holding it left plain numbers behind: keep going.
        self.tally.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Replaces the settled spend with what the ledger says for the UTC
    /// day and month of `now`.
    pub fn set_spent(&self, now: DateTime<Utc>, day: f64, month: f64) {
        let mut t = self.tally();
        t.roll(now);
        t.spent_day = day;
        t.spent_month = month;
    }

    /// Why `usd` more would pass a cap now, if it would.
    fn over(&self, t: &Tally, usd: f64) -> Option<OverBudget> {
        if usd <= 0.0 {
            // Free, or a model without a price: nothing to hold it to.
            return None;
        }
        let held = t.held();
        let check = |period, cap: Option<f64>, spent: f64| {
            let cap = cap?;
            // A millionth of slack: estimates are rounded to millionths.
            (round_usd(spent + held + usd) > cap + 1e-9).then_some(OverBudget {
                period,
                spent: round_usd(spent),
                held: round_usd(held),
                estimate: usd,
                cap,
            })
        };
        check(Period::Day, self.daily, t.spent_day)
            .or_else(|| check(Period::Month, self.monthly, t.spent_month))
    }

    /// Whether `usd` more fits under the caps now, reserving nothing.
    pub fn check(&self, now: DateTime<Utc>, usd: f64) -> Result<(), OverBudget> {
        let mut t = self.tally();
        t.roll(now);
        self.over(&t, usd).map_or(Ok(()), Err)
    }

    /// Holds `usd` against the caps, or refuses if it would pass one.
    pub fn reserve(&self, now: DateTime<Utc>, usd: f64) -> Result<HoldId, OverBudget> {
        let mut t = self.tally();
        t.roll(now);
        if let Some(over) = self.over(&t, usd) {
            return Err(over);
        }
        t.next += 1;
        let id = t.next;
        t.holds.insert(id, usd);
        Ok(HoldId(id))
    }

    /// Ends a hold: `spent` (0 for a call that was not billed) becomes
    /// settled spend of the period of `now`.
    /// Both under one lock: between the two, the amount would be neither
    /// held nor spent, and a reservation on another thread could take it.
    pub fn settle(&self, id: HoldId, now: DateTime<Utc>, spent: f64) {
        let mut t = self.tally();
        t.holds.remove(&id.0);
        t.roll(now);
        t.spent_day += spent;
        t.spent_month += spent;
    }

    /// Lowers a hold by `amount` (a batch's prompt that ended), or ends it
    /// (`None`).
    pub fn release(&self, id: HoldId, amount: Option<f64>) {
        let mut t = self.tally();
        let left = match (t.holds.get(&id.0), amount) {
            (Some(held), Some(a)) => held - a,
            _ => 0.0,
        };
        if left > 1e-9 {
            t.holds.insert(id.0, left);
        } else {
            t.holds.remove(&id.0);
        }
    }

    /// Adds settled spend to the period of `now`.
    pub fn add_spent(&self, now: DateTime<Utc>, usd: f64) {
        let mut t = self.tally();
        t.roll(now);
        t.spent_day += usd;
        t.spent_month += usd;
    }

    /// The caps and the settled spend of the period of `now`.
    pub fn state(&self, now: DateTime<Utc>) -> BudgetState {
        let mut t = self.tally();
        t.roll(now);
        BudgetState {
            daily_usd: self.daily,
            monthly_usd: self.monthly,
            spent_today: round_usd(t.spent_day),
            spent_month: round_usd(t.spent_month),
        }
    }
}

/// Prices, budget and the ledger, as the service holds them.
pub struct Spend {
    pub prices: PriceTable,
    pub budget: Budget,
    ledger: Arc<dyn UsageLedger>,
    /// Serialises reserving and settling with the ledger reads and writes
    /// they make, so no call sees a spend that is neither held nor settled.
    gate: tokio::sync::Mutex<()>,
}

impl Spend {
    pub fn new(settings: &SpendSettings, ledger: Arc<dyn UsageLedger>) -> Self {
        Self {
            prices: PriceTable::new(&settings.prices),
            budget: Budget::new(settings.budget_daily_usd, settings.budget_monthly_usd),
            ledger,
            gate: tokio::sync::Mutex::new(()),
        }
    }
}

/// Midnight UTC starting `now`'s day, and the first of its month.
pub fn period_starts(now: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
    let day = now.date_naive();
    let month = day.with_day(1).unwrap_or(day);
    let at = |d: NaiveDate| Utc.from_utc_datetime(&d.and_time(chrono::NaiveTime::MIN));
    (at(day), at(month))
}

/// How long a hold in the ledger counts when its process never settles it
/// (the process died): long enough for any call or batch, short enough
/// that a crash does not block the budget for the rest of the day.
const LEDGER_HOLD_TTL: chrono::Duration = chrono::Duration::minutes(30);

/// An estimate held against the caps; dropping it releases what is left
/// (a call abandoned before it settled).
pub(super) struct Hold<'a> {
    budget: &'a Budget,
    id: HoldId,
    /// The same hold in the ledger, where every process sharing it sees
    /// it (only when a cap is set).
    shared: Option<(HoldKey, Arc<dyn UsageLedger>)>,
}

impl Drop for Hold<'_> {
    fn drop(&mut self) {
        self.budget.release(self.id, None);
        if let Some((key, ledger)) = self.shared.take()
            && let Ok(rt) = tokio::runtime::Handle::try_current()
        {
            // What is left of it, whatever that is; if this never runs the
            // hold expires by itself.
            rt.spawn(async move {
                if let Err(e) = ledger.settle(&key, f64::INFINITY, None).await {
                    tracing::warn!(error = %e, "could not release a budget hold in the usage ledger; it expires by itself");
                }
            });
        }
    }
}

/// The caps as the ledger checks them, for the periods of `now`.
fn ledger_caps(budget: &Budget, now: DateTime<Utc>) -> Vec<(Period, Cap)> {
    let (day, month) = period_starts(now);
    [
        (Period::Day, day, budget.daily),
        (Period::Month, month, budget.monthly),
    ]
    .into_iter()
    .filter_map(|(period, since, limit)| limit.map(|limit_usd| (period, Cap { since, limit_usd })))
    .collect()
}

/// A backend call to record in the ledger.
#[derive(Debug, Clone)]
pub(super) struct Call {
    pub operation: &'static str,
    /// `image` or `video`.
    pub kind: &'static str,
    pub model: String,
    /// Image size or video resolution.
    pub size: String,
    pub seconds: Option<f64>,
    pub estimate: Option<f64>,
}

impl Call {
    /// The ledger row of this call ending in `outcome`; `billed`: whether
    /// the estimate counts as spent.
    pub(super) fn entry(
        &self,
        outcome: Outcome,
        billed: bool,
        error: Option<String>,
    ) -> UsageEntry {
        UsageEntry {
            time: Utc::now(),
            model: self.model.clone(),
            operation: self.operation.to_owned(),
            kind: self.kind.to_owned(),
            size: Some(self.size.clone()),
            seconds: self.seconds,
            estimate_usd: self.estimate,
            cost_usd: if billed {
                self.estimate.unwrap_or(0.0)
            } else {
                0.0
            },
            outcome,
            error,
            job_id: None,
        }
    }
}

/// How a failed call counts: its ledger outcome and whether the provider
/// bills it. Refusals before any work (rate limits, timeouts, an
/// unreachable or refusing backend, bad requests) are not billed; a safety
/// block is recorded as `blocked` and not billed (Google charges no output
/// for a blocked image or video; the input tokens of an image request are
/// a fraction of a cent and not estimated). A call whose answer was lost
/// after the backend took it, or that was cancelled while the backend
/// worked, may have been generated: it is counted, to stay on the safe
/// side of a cap.
pub(super) fn billing_of(e: &ServiceError) -> (Outcome, bool) {
    match e {
        ServiceError::Image { source, .. } | ServiceError::Video { source, .. } => match source {
            BackendError::ContentBlocked { .. } => (Outcome::Blocked, false),
            BackendError::Interrupted { .. } => (Outcome::Failed, true),
            _ => (Outcome::Failed, false),
        },
        ServiceError::Cancelled => (Outcome::Failed, true),
        _ => (Outcome::Failed, false),
    }
}

impl Service {
    /// Reads what the ledger says is spent this UTC day and month into the
    /// budget. Callers hold the gate.
    async fn refresh_spent(&self, now: DateTime<Utc>) {
        let (day, month) = period_starts(now);
        let ledger = &self.spend.ledger;
        match tokio::try_join!(ledger.spent_since(day), ledger.spent_since(month)) {
            Ok((d, m)) => self.spend.budget.set_spent(now, d, m),
            Err(e) => {
                tracing::warn!(error = %e, "could not read the usage ledger; using the last known spend")
            }
        }
    }

    /// Reads the ledger's spend of this UTC day and month, so
    /// [`Service::check_budget`] knows it before the first call (every
    /// reservation and settlement reads it again). Without a cap nothing
    /// reads it (no spend is over no cap), so nothing is read before
    /// `serve` answers `initialize`.
    pub async fn load_budget(&self) {
        if !self.spend.budget.is_capped() {
            return;
        }
        let _gate = self.spend.gate.lock().await;
        self.refresh_spent(Utc::now()).await;
    }

    /// Holds `usd` against the caps before a backend request, or fails
    /// with `BUDGET_EXCEEDED`. With a cap set, the hold is also written to
    /// the ledger in one transaction with the check
    /// ([`UsageLedger::hold`]): every process sharing the ledger (replicas,
    /// a CLI beside a server) sees it, so together they cannot pass a cap.
    pub(super) async fn reserve(&self, usd: f64) -> Result<Hold<'_>, ServiceError> {
        let _gate = self.spend.gate.lock().await;
        let now = Utc::now();
        if self.spend.budget.is_capped() {
            self.refresh_spent(now).await;
        }
        let id = self
            .spend
            .budget
            .reserve(now, usd)
            .map_err(ServiceError::BudgetExceeded)?;
        let mut hold = Hold {
            budget: &self.spend.budget,
            id,
            shared: None,
        };
        if self.spend.budget.is_capped() && usd > 0.0 {
            let caps = ledger_caps(&self.spend.budget, now);
            let limits: Vec<Cap> = caps.iter().map(|(_, c)| *c).collect();
            match self
                .spend
                .ledger
                .hold(usd, &limits, now + LEDGER_HOLD_TTL)
                .await
            {
                Ok(Ok(key)) => hold.shared = Some((key, self.spend.ledger.clone())),
                Ok(Err(hit)) => {
                    let (period, cap) = caps[hit.cap];
                    let spent = match period {
                        Period::Day => self.spend.budget.state(now).spent_today,
                        Period::Month => self.spend.budget.state(now).spent_month,
                    };
                    return Err(ServiceError::BudgetExceeded(OverBudget {
                        period,
                        spent: round_usd(spent),
                        held: round_usd((hit.committed_usd - spent).max(0.0)),
                        estimate: usd,
                        cap: cap.limit_usd,
                    }));
                }
                // The ledger is where spend is kept: a cap that cannot be
                // checked is not passed on a guess.
                Err(e) => return Err(ServiceError::Storage(e)),
            }
        }
        Ok(hold)
    }

    /// Records `entry` in the ledger and takes `share` off `hold`: what the
    /// call cost is now spend (from the ledger), the rest of its estimate
    /// is free again. A ledger that cannot be written is logged; the call's
    /// result stands.
    pub(super) async fn settle_call(&self, hold: &Hold<'_>, share: f64, entry: UsageEntry) {
        let _gate = self.spend.gate.lock().await;
        let now = entry.time;
        let cost = entry.cost_usd;
        let written = match &hold.shared {
            // From held to spent in one transaction.
            Some((key, ledger)) => ledger.settle(key, share, Some(&entry)).await,
            None => self.spend.ledger.record(&entry).await,
        };
        self.spend.budget.release(hold.id, Some(share));
        match written {
            Ok(()) => self.refresh_spent(now).await,
            Err(e) => {
                tracing::warn!(error = %e, model = %entry.model, "could not record a call in the usage ledger");
                self.spend.budget.add_spent(now, cost);
            }
        }
    }

    /// Runs one metered backend call: reserves its estimate (unless a
    /// batch already holds it, `prepaid`), runs `f`, and records how it
    /// ended. Fails with `BUDGET_EXCEEDED` before `f` runs if the estimate
    /// would pass a cap.
    pub(super) async fn metered<T>(
        &self,
        call: &Call,
        prepaid: Option<&Hold<'_>>,
        f: impl std::future::Future<Output = Result<T, ServiceError>>,
    ) -> Result<T, ServiceError> {
        let share = call.estimate.unwrap_or(0.0);
        let own;
        let hold = match prepaid {
            Some(h) => h,
            None => {
                own = self.reserve(share).await?;
                &own
            }
        };
        let result = f.await;
        let entry = match &result {
            Ok(_) => call.entry(Outcome::Succeeded, true, None),
            Err(e) => {
                let (outcome, billed) = billing_of(e);
                call.entry(outcome, billed, Some(e.code().as_str().to_owned()))
            }
        };
        self.settle_call(hold, share, entry).await;
        result
    }

    /// Records a video job's submission: its estimate is held in the
    /// ledger (as `running`, counted) until the job ends, so the hold
    /// survives a restart.
    pub(super) async fn record_video_start(&self, call: &Call, hold: Hold<'_>, job_id: &str) {
        let mut entry = call.entry(Outcome::Running, true, None);
        entry.job_id = Some(job_id.to_owned());
        self.settle_call(&hold, call.estimate.unwrap_or(0.0), entry)
            .await;
    }

    /// Settles a video job's ledger row: what it cost, or nothing.
    pub(super) async fn record_video_end(
        &self,
        job_id: &str,
        outcome: Outcome,
        cost_usd: f64,
        seconds: Option<f64>,
        error: Option<String>,
    ) {
        let _gate = self.spend.gate.lock().await;
        match self
            .spend
            .ledger
            .settle_job(job_id, outcome, cost_usd, seconds, error)
            .await
        {
            Ok(_) => self.refresh_spent(Utc::now()).await,
            Err(e) => {
                tracing::warn!(error = %e, job = job_id, "could not settle a video job in the usage ledger")
            }
        }
    }
}

impl Service {
    /// What `what` would cost, in US dollars (an estimate from the dated
    /// price table, with the config file's `[prices]` applied); `None` when
    /// the model has no price for it.
    pub fn estimate_cost(&self, what: &Priced) -> Option<f64> {
        self.spend.prices.estimate(what)
    }

    /// Fails with `BUDGET_EXCEEDED` when `usd` more would pass the daily or
    /// monthly cap now (counting what is spent and what running calls
    /// hold). Reserves nothing: the call itself reserves when it starts, so
    /// this is for asking first (nobody is asked to confirm a call the
    /// budget will refuse).
    pub fn check_budget(&self, usd: f64) -> Result<(), ServiceError> {
        // The settled spend is what the ledger said at start
        // ([`Service::load_budget`]) or at the last reservation or
        // settlement (every call makes them).
        self.spend
            .budget
            .check(Utc::now(), usd)
            .map_err(ServiceError::BudgetExceeded)
    }
}

/// `text` as an instant: RFC 3339, or a date (`2026-03-01`, midnight UTC
/// starting it, or ending it when `end_of_day`).
fn parse_instant(
    field: &'static str,
    text: &str,
    end_of_day: bool,
) -> Result<DateTime<Utc>, ServiceError> {
    let t = text.trim();
    if let Ok(at) = DateTime::parse_from_rfc3339(t) {
        return Ok(at.with_timezone(&Utc));
    }
    match NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        Ok(d) => {
            let d = match end_of_day {
                true => d.succ_opt().unwrap_or(d),
                false => d,
            };
            Ok(Utc.from_utc_datetime(&d.and_time(chrono::NaiveTime::MIN)))
        }
        Err(_) => Err(ServiceError::BadParameter {
            field,
            message: format!(
                "`{field}` = `{t}` is not a date; use `YYYY-MM-DD` (UTC) or an RFC 3339 time such as `2026-03-01T12:00:00Z`"
            ),
        }),
    }
}

impl Service {
    /// What the backend calls from `since` (default: the first of this
    /// month, UTC) until `until` (default: now; a date means through that
    /// day) were estimated to cost, per model and per day, with the budget.
    pub async fn usage(
        &self,
        since: Option<&str>,
        until: Option<&str>,
    ) -> Result<crate::contract::UsageOutput, ServiceError> {
        use crate::contract::{UsageBudget, UsageByDay, UsageByModel, UsageOutput};
        let now = Utc::now();
        let since = match since.map(str::trim).filter(|v| !v.is_empty()) {
            Some(v) => parse_instant("since", v, false)?,
            None => period_starts(now).1,
        };
        let until = match until.map(str::trim).filter(|v| !v.is_empty()) {
            Some(v) => parse_instant("until", v, true)?,
            None => now + chrono::Duration::milliseconds(1),
        };
        if until <= since {
            return Err(ServiceError::BadParameter {
                field: "until",
                message: "`until` is not after `since`; give a later `until` or an earlier `since`"
                    .into(),
            });
        }
        let ledger = &self.spend.ledger;
        let entries = ledger
            .entries(since, until)
            .await
            .map_err(ServiceError::Storage)?;
        let (day, month) = period_starts(now);
        let (spent_today, spent_month) =
            tokio::try_join!(ledger.spent_since(day), ledger.spent_since(month))
                .map_err(ServiceError::Storage)?;
        let mut out = UsageOutput {
            success: true,
            since: crate::store::timestamp(since),
            until: crate::store::timestamp(until),
            total_usd: 0.0,
            images: 0,
            videos: 0,
            calls: 0,
            failed: 0,
            blocked: 0,
            running: 0,
            by_model: Vec::new(),
            by_day: Vec::new(),
            budget: UsageBudget {
                daily_usd: self.spend.budget.daily,
                monthly_usd: self.spend.budget.monthly,
                spent_today: round_usd(spent_today),
                spent_month: round_usd(spent_month),
            },
            note: format!(
                "Estimates from media-gen's price table (checked {}, with the config file's `[prices]`), not a bill. \
Counted: files made, video jobs still running (their estimate), and calls that may have been generated before \
they failed; not counted: blocked, rate-limited, timed-out or refused calls. Days and months are UTC.",
                domain::PRICES_CHECKED
            ),
        };
        let mut by_model: BTreeMap<String, UsageByModel> = BTreeMap::new();
        let mut by_day: BTreeMap<String, UsageByDay> = BTreeMap::new();
        for e in &entries {
            let made = u64::from(e.outcome == Outcome::Succeeded);
            out.calls += 1;
            out.total_usd += e.cost_usd;
            match e.outcome {
                Outcome::Succeeded if e.kind == "video" => out.videos += 1,
                Outcome::Succeeded => out.images += 1,
                Outcome::Failed => out.failed += 1,
                Outcome::Blocked => out.blocked += 1,
                Outcome::Running => out.running += 1,
            }
            let m = by_model
                .entry(e.model.clone())
                .or_insert_with(|| UsageByModel {
                    model: e.model.clone(),
                    count: 0,
                    usd: 0.0,
                    calls: 0,
                });
            m.count += made;
            m.usd += e.cost_usd;
            m.calls += 1;
            let date = e.time.date_naive().to_string();
            let d = by_day.entry(date.clone()).or_insert_with(|| UsageByDay {
                date,
                count: 0,
                usd: 0.0,
            });
            d.count += made;
            d.usd += e.cost_usd;
        }
        out.total_usd = round_usd(out.total_usd);
        out.by_model = by_model
            .into_values()
            .map(|mut m| {
                m.usd = round_usd(m.usd);
                m
            })
            .collect();
        out.by_model
            .sort_by(|a, b| b.usd.total_cmp(&a.usd).then(a.model.cmp(&b.model)));
        out.by_day = by_day
            .into_values()
            .map(|mut d| {
                d.usd = round_usd(d.usd);
                d
            })
            .collect();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(model: &str, size: ImageSize, count: u32) -> Priced {
        Priced::Image {
            model: model.to_owned(),
            size,
            count,
        }
    }

    fn video(model: &str, resolution: &str, seconds: f64) -> Priced {
        Priced::Video {
            model: model.to_owned(),
            resolution: resolution.to_owned(),
            seconds,
        }
    }

    #[test]
    fn every_image_model_and_size_is_priced_as_the_table_says() {
        let t = PriceTable::default();
        let want: &[(&str, &[(ImageSize, f64)])] = &[
            (
                "gemini-3-pro-image-preview",
                &[
                    (ImageSize::S1K, 0.134),
                    (ImageSize::S2K, 0.134),
                    (ImageSize::S4K, 0.24),
                ],
            ),
            (
                "gemini-3-pro-image",
                &[
                    (ImageSize::S1K, 0.134),
                    (ImageSize::S2K, 0.134),
                    (ImageSize::S4K, 0.24),
                ],
            ),
            ("gemini-2.5-flash-image", &[(ImageSize::S1K, 0.039)]),
            (
                "gemini-3.1-flash-image-preview",
                &[
                    (ImageSize::S512, 0.045),
                    (ImageSize::S1K, 0.067),
                    (ImageSize::S2K, 0.101),
                    (ImageSize::S4K, 0.151),
                ],
            ),
        ];
        assert_eq!(want.len(), domain::IMAGE_MODELS.len());
        for m in &domain::IMAGE_MODELS {
            let (_, prices) = want.iter().find(|(id, _)| *id == m.id).unwrap();
            for size in ImageSize::ALL {
                let expected = prices.iter().find(|(s, _)| *s == size).map(|(_, p)| *p);
                // Every size the model makes has a price, and only those.
                assert_eq!(
                    expected.is_some(),
                    m.image_sizes.contains(&size),
                    "{} {size}",
                    m.id
                );
                for count in [1, 3, 10] {
                    assert_eq!(
                        t.estimate(&image(m.id, size, count)),
                        expected.map(|p| round_usd(p * f64::from(count))),
                        "{} {size} ×{count}",
                        m.id
                    );
                }
            }
        }
        assert_eq!(
            t.estimate(&image("gemini-3-pro-image-preview", ImageSize::S4K, 3)),
            Some(0.72)
        );
        assert_eq!(t.estimate(&image("dall-e-3", ImageSize::S1K, 1)), None);
    }

    #[test]
    fn every_video_model_is_priced_per_second_by_resolution() {
        let t = PriceTable::default();
        let want: &[(&str, &[(&str, f64)])] = &[
            (
                "veo-3.1-generate-preview",
                &[("720p", 0.40), ("1080p", 0.40), ("4k", 0.60)],
            ),
            (
                "veo-3.1-fast-generate-preview",
                &[("720p", 0.10), ("1080p", 0.12), ("4k", 0.30)],
            ),
            ("veo-3.0-generate-001", &[("720p", 0.40), ("1080p", 0.40)]),
            (
                "veo-3.0-fast-generate-001",
                &[("720p", 0.15), ("1080p", 0.15)],
            ),
            ("veo-2.0-generate-001", &[("720p", 0.35)]),
            ("grok-imagine-video", &[]),
        ];
        assert_eq!(want.len(), domain::VIDEO_MODELS.len());
        for m in &domain::VIDEO_MODELS {
            let (_, prices) = want.iter().find(|(id, _)| *id == m.id).unwrap();
            for res in m.resolutions {
                let per_second = prices.iter().find(|(r, _)| r == res).map(|(_, p)| *p);
                for seconds in m.durations_at(res) {
                    let s = f64::from(seconds);
                    assert_eq!(
                        t.estimate(&video(m.id, res, s)),
                        per_second.map(|p| round_usd(p * s)),
                        "{} {res} {seconds}s",
                        m.id
                    );
                }
            }
        }
        // The figure: an 8 s Veo 3.1 clip ≈ $3.20.
        assert_eq!(
            t.estimate(&video("veo-3.1-generate-preview", "720p", 8.0)),
            Some(3.2)
        );
        assert_eq!(
            t.estimate(&video("veo-3.1-generate-preview", "4k", 8.0)),
            Some(4.8)
        );
        // An extension: the 7 s it adds.
        assert_eq!(
            t.estimate(&video("veo-3.1-fast-generate-preview", "720p", 7.0)),
            Some(0.7)
        );
        assert_eq!(t.estimate(&video("grok-imagine-video", "720p", 6.0)), None);
        assert_eq!(
            t.estimate(&video("veo-2.0-generate-001", "1080p", 8.0)),
            None,
            "no price at a resolution the model does not make"
        );
    }

    #[test]
    fn overrides_replace_single_figures_and_price_unpriced_models() {
        let t = PriceTable::new(&[
            PriceOverride {
                model: "gemini-3-pro-image-preview",
                per_image_usd: vec![(ImageSize::S4K, 0.2)],
                per_second_usd: Vec::new(),
            },
            PriceOverride {
                model: "grok-imagine-video",
                per_image_usd: Vec::new(),
                per_second_usd: vec![("720p", 0.05)],
            },
        ]);
        let pro = "gemini-3-pro-image-preview";
        assert_eq!(t.per_image(pro, ImageSize::S4K), Some(0.2));
        assert_eq!(t.per_image(pro, ImageSize::S1K), Some(0.134), "kept");
        assert_eq!(
            t.estimate(&video("grok-imagine-video", "720p", 6.0)),
            Some(0.3)
        );
        let price = t.model_price(pro).unwrap();
        assert!(price.configured);
        assert_eq!(price.per_image_usd.unwrap()["4K"], 0.2);
        let veo = t.model_price("veo-3.1-generate-preview").unwrap();
        assert!(!veo.configured);
        assert_eq!(veo.checked, domain::PRICES_CHECKED);
        assert_eq!(veo.per_second_usd.unwrap()["4k"], 0.6);
        assert!(
            PriceTable::default()
                .model_price("grok-imagine-video")
                .is_none()
        );
    }

    fn at(day: u32, hour: u32) -> DateTime<Utc> {
        use chrono::TimeZone;
        Utc.with_ymd_and_hms(2026, 3, day, hour, 0, 0).unwrap()
    }

    #[test]
    fn a_reservation_that_would_pass_a_cap_is_refused_and_settling_frees_it() {
        let b = Budget::new(Some(1.0), Some(2.0));
        let now = at(10, 12);
        let a = b.reserve(now, 0.6).unwrap();
        let over = b.reserve(now, 0.5).unwrap_err();
        assert_eq!(over.period, Period::Day);
        assert_eq!((over.held, over.spent, over.cap), (0.6, 0.0, 1.0));
        assert!(
            over.message().contains("MCP_BUDGET_DAILY_USD"),
            "{}",
            over.message()
        );
        // Not billed: the hold goes, nothing is spent.
        b.settle(a, now, 0.0);
        let a = b.reserve(now, 0.5).unwrap();
        b.settle(a, now, 0.5);
        assert_eq!(b.state(now).spent_today, 0.5);
        assert!(b.check(now, 0.5).is_ok(), "exactly at the cap is allowed");
        assert!(b.check(now, 0.51).is_err());
        // The next day starts at 0; the month keeps counting.
        let tomorrow = at(11, 0);
        b.set_spent(tomorrow, 0.0, 1.9);
        let over = b.check(tomorrow, 0.2).unwrap_err();
        assert_eq!(over.period, Period::Month);
        assert!(over.message().contains("MCP_BUDGET_MONTHLY_USD"));
        // A new month starts at 0 too.
        use chrono::TimeZone;
        let april = Utc.with_ymd_and_hms(2026, 4, 1, 0, 0, 1).unwrap();
        assert!(b.check(april, 0.9).is_ok());
        assert_eq!(b.state(april).spent_month, 0.0);
    }

    #[test]
    fn concurrent_reservations_never_admit_more_than_the_cap() {
        use std::sync::Arc;
        let cap = 10.0;
        let b = Arc::new(Budget::new(Some(cap), None));
        let now = at(5, 9);
        let admitted: f64 = std::thread::scope(|s| {
            let handles: Vec<_> = (0..16)
                .map(|i| {
                    let b = Arc::clone(&b);
                    s.spawn(move || {
                        let mut sum = 0.0;
                        for j in 0..200 {
                            // Prices of different sizes, some settling
                            // (billed or not) while others reserve.
                            let usd = [0.134, 0.24, 0.067, 3.2][(i + j) % 4];
                            if let Ok(h) = b.reserve(now, usd) {
                                if j % 3 == 0 {
                                    b.settle(h, now, 0.0);
                                } else {
                                    sum += usd;
                                    if j % 2 == 0 {
                                        b.settle(h, now, usd);
                                    }
                                }
                            }
                        }
                        sum
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert!(admitted <= cap + 1e-6, "admitted {admitted} > cap {cap}");
        assert!(admitted > cap - 3.3, "the cap was used: {admitted}");
    }
}
