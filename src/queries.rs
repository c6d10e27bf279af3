//! Read-model queries a service needs beyond a unit's whole list: one page of any assignee's
//! list with its counts, the zone and department views, who holds one case, which cases were
//! urged, and how far the read models are behind the log. Like every query, each first
//! catches the read models up with the log (read-your-writes).

use std::collections::{BTreeMap, HashSet};

use caseflow_domain::{Assignee, CaseId, DepartmentId, Obligation, ZoneId};
use caseflow_projections::{CaseCard, RunnerProgress, TodoCounts, TodoItem};
use chrono::{DateTime, Utc};

use crate::engine::Engine;
use crate::error::EngineError;

/// One page of an assignee's to-do list, with the counts of the whole list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TodoPage {
    /// The items of the page, overdue first, then by due time.
    pub items: Vec<TodoItem>,
    /// Items on the whole list and how many of them are overdue at `now`.
    pub counts: TodoCounts,
}

/// Who holds one case now: its card and every duty the who-acts table names for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseHolders {
    /// What the to-do lists show of the case.
    pub card: CaseCard,
    /// Every open duty on the case, with its assignee.
    pub obligations: Vec<Obligation>,
}

impl Engine {
    /// `limit` items of an assignee's list after skipping `offset`, and the list's counts.
    /// The cheap way to serve a long list: nothing beyond the page is copied.
    pub async fn todo_page(
        &self,
        assignee: &Assignee,
        now: DateTime<Utc>,
        offset: usize,
        limit: usize,
    ) -> Result<TodoPage, EngineError> {
        self.refresh().await?;
        let read = self.inner.read.lock().await;
        let todo = read.todo.read()?;
        Ok(TodoPage {
            items: todo.page_for_assignee(assignee, now, offset, limit),
            counts: todo.counts_for(assignee, now),
        })
    }

    /// Every item on the lists of the units of one collaboration zone, overdue first.
    pub async fn todo_for_zone(
        &self,
        zone: &ZoneId,
        now: DateTime<Utc>,
    ) -> Result<Vec<TodoItem>, EngineError> {
        self.refresh().await?;
        let read = self.inner.read.lock().await;
        let todo = read.todo.read()?;
        Ok(todo.for_zone(&self.inner.district.org, zone, now))
    }

    /// The list of one partner department (its rectifications), overdue first.
    pub async fn todo_for_department(
        &self,
        department: &DepartmentId,
        now: DateTime<Utc>,
    ) -> Result<Vec<TodoItem>, EngineError> {
        self.refresh().await?;
        let read = self.inner.read.lock().await;
        let todo = read.todo.read()?;
        Ok(todo.for_assignee(&Assignee::Department(department.clone()), now))
    }

    /// The counts of every assignee's list at `now`.
    pub async fn todo_counts(
        &self,
        now: DateTime<Utc>,
    ) -> Result<BTreeMap<Assignee, TodoCounts>, EngineError> {
        self.refresh().await?;
        let read = self.inner.read.lock().await;
        let todo = read.todo.read()?;
        Ok(todo.counts(now))
    }

    /// Who holds a case now; `None` when it waits on nobody (closed, or not reported).
    pub async fn case_holders(&self, case_id: CaseId) -> Result<Option<CaseHolders>, EngineError> {
        self.refresh().await?;
        let read = self.inner.read.lock().await;
        let todo = read.todo.read()?;
        Ok(todo.case(&case_id).map(|(card, obligations)| CaseHolders {
            card: card.clone(),
            obligations: obligations.to_vec(),
        }))
    }

    /// The open cases with a deadline that was urged (督办) and is still open.
    pub async fn urged_cases(&self) -> Result<HashSet<CaseId>, EngineError> {
        self.refresh().await?;
        let read = self.inner.read.lock().await;
        let deadlines = read.deadlines.read()?;
        Ok(deadlines.urged_cases())
    }

    /// How far each read model is behind the log, without catching up first (what a
    /// readiness probe and the projection-lag metric report).
    pub async fn read_model_progress(&self) -> Result<RunnerProgress, EngineError> {
        let head = self.inner.store.head_position().await?;
        let read = self.inner.read.lock().await;
        let mut progress = read.runner.status();
        progress.head = progress.head.max(head);
        for status in &mut progress.projections {
            status.lag = progress.head.saturating_sub(status.checkpoint);
        }
        Ok(progress)
    }
}
