//! Reporter protection on the engine: reveal (recorded first, then decrypted), erasure
//! (recorded, then the reporter's key destroyed, then carried to their other cases) and
//! master-key rotation. Who may reveal or erase is the domain's rule (`authority.rs`); the
//! engine asks it by executing the command and never restates it.

use caseflow_domain::{
    Actor, CaseEvent, CaseId, Command, DomainError, EraseReporterContact, ProtectedContact,
    Reporter, ReporterContactErased, ReporterHandle, RevealReporterContact,
};

use crate::contacts::{MasterKey, Opened};
use crate::engine::{CommandEnvelope, Engine, ExecuteOutcome, READ_BATCH, decode};
use crate::error::EngineError;
use crate::ids::derived_id;

/// One case of a reporter, as its report recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReporterCase {
    /// The case.
    pub case_id: CaseId,
    /// The data key its contact was sealed with (`None`: anonymous or a clear v1 contact).
    pub key_id: Option<String>,
}

impl Engine {
    /// Reads a named reporter's contact for `actor`, who must be allowed to by the domain's
    /// rule (docs/domain.md, "Who may read a reporter's contact"). The reveal is recorded
    /// first (`ReporterContactRevealed`: who, when, why); only then is the contact
    /// decrypted. An actor who may not gets [`EngineError::Rejected`] and nothing is
    /// written; an erased contact gives a refusal naming the erasure.
    pub async fn reveal_reporter_contact(
        &self,
        case_id: CaseId,
        actor: Actor,
        reason: impl Into<String>,
    ) -> Result<ProtectedContact, EngineError> {
        let before = self.case_state(case_id).await?;
        if matches!(
            before.case().map(|c| &c.reporter),
            Some(Reporter::Sealed(_))
        ) {
            // Do not record a look that cannot be shown (no master key, no key store).
            self.inner.vault.ready(self.inner.store.as_ref()).await?;
        }
        let envelope = CommandEnvelope::new(
            self.new_id(),
            actor,
            self.now(),
            RevealReporterContact {
                case_id,
                reason: reason.into(),
            },
        );
        self.execute(envelope).await?;
        let state = self.case_state(case_id).await?;
        let case = state.case().ok_or(EngineError::CaseNotFound(case_id))?;
        match self
            .inner
            .vault
            .open_contact(self.inner.store.as_ref(), case)
            .await?
        {
            Some(Opened::Contact(contact)) => Ok(contact),
            Some(Opened::Destroyed(at)) => Err(EngineError::ContactErased { case_id, at }),
            None => Err(EngineError::NoContact(case_id)),
        }
    }

    /// Erases a reporter's contact: records `ReporterContactErased` on this case, destroys
    /// the reporter's data key (every contact of theirs becomes unreadable, with any master
    /// key and any copy of the log), and records the erasure on the reporter's other cases.
    /// The workflow of every case continues; hash chains and trees are untouched (the
    /// ciphertext stays where it was).
    pub async fn erase_reporter_contact(
        &self,
        case_id: CaseId,
        actor: Actor,
        reason: impl Into<String>,
        legal_basis: impl Into<String>,
    ) -> Result<ExecuteOutcome, EngineError> {
        let envelope = CommandEnvelope::new(
            self.new_id(),
            actor,
            self.now(),
            EraseReporterContact {
                case_id,
                reason: reason.into(),
                legal_basis: legal_basis.into(),
                requested_on: case_id,
            },
        );
        self.execute(envelope).await
    }

    /// Rewraps every reporter data key under `new_master` (the log is not touched); returns
    /// how many keys were rewrapped. Afterwards only `new_master` opens the key store.
    pub async fn rotate_master_key(&self, new_master: &MasterKey) -> Result<usize, EngineError> {
        self.inner
            .vault
            .rotate(self.inner.store.as_ref(), new_master)
            .await
    }

    /// Writes the key store's pending key assignments (they are also written in batches and
    /// when the engine is dropped; see `contacts::keystore`).
    pub async fn flush_keys(&self) -> Result<(), EngineError> {
        self.inner.vault.flush().await
    }

    /// Every case of a reporter (in log order) with the key its contact was sealed with.
    pub async fn reporter_cases(
        &self,
        reporter: ReporterHandle,
    ) -> Result<Vec<ReporterCase>, EngineError> {
        let mut cases = Vec::new();
        let mut from = 1u64;
        loop {
            let batch = self.inner.store.read_all(from, READ_BATCH).await?;
            let Some(last) = batch.last() else {
                return Ok(cases);
            };
            from = last.position + 1;
            for record in batch.iter().filter(|r| r.event_type == "CaseReported") {
                let CaseEvent::CaseReported(report) = decode(record)? else {
                    continue;
                };
                if report.reporter_handle != reporter {
                    continue;
                }
                let key_id = match &report.reporter {
                    Reporter::Sealed(sealed) => Some(sealed.key_id.clone()),
                    Reporter::Anonymous | Reporter::Named(_) => None,
                };
                cases.push(ReporterCase {
                    case_id: report.case_id,
                    key_id,
                });
            }
        }
    }

    /// After an erasure was recorded: destroy every key of the reporter, then (for the case
    /// the erasure was requested on) record it on the reporter's other cases, each with a
    /// command id derived from the request so a retry writes nothing twice.
    pub(crate) async fn carry_out_erasure(
        &self,
        envelope: &CommandEnvelope,
        erased: &ReporterContactErased,
    ) -> Result<(), EngineError> {
        let cases = self.reporter_cases(erased.reporter_handle).await?;
        let key_ids: Vec<String> = cases.iter().filter_map(|c| c.key_id.clone()).collect();
        self.inner
            .vault
            .destroy(
                self.inner.store.as_ref(),
                erased.reporter_handle,
                &key_ids,
                erased.at,
            )
            .await?;
        if erased.requested_on != erased.case_id {
            return Ok(());
        }
        let Command::EraseReporterContact(request) = &envelope.command else {
            return Ok(());
        };
        for other in cases.iter().filter(|c| c.case_id != erased.case_id) {
            let command_id = derived_id(
                "caseflow.erase-reporter-contact",
                &[&envelope.command_id.to_string(), &other.case_id.to_string()],
            );
            let carried = CommandEnvelope::new(
                command_id,
                envelope.actor.clone(),
                envelope.issued_at.max(self.now()),
                EraseReporterContact {
                    case_id: other.case_id,
                    requested_on: erased.case_id,
                    ..request.clone()
                },
            );
            match Box::pin(self.execute(carried)).await {
                Ok(_) => {}
                // Already erased, or that report was anonymous: nothing to record.
                Err(EngineError::Rejected {
                    source:
                        DomainError::ReporterContactErased { .. } | DomainError::NoReporterContact,
                    ..
                }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}
