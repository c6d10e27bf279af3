//! Configurable policies: time limits per stage and the routing policy that suggests who leads
//! and who answers for a case.

use serde::{Deserialize, Serialize};

use crate::error::DomainError;
use crate::ids::{CaseId, DepartmentId, UnitId};
use crate::model::{Category, Disposition, ResponsibleParty, Severity};
use crate::org::{Level, Organisation};
use crate::state::CaseState;

/// Time limits in working days. Every limit is at least 1 (checked when loaded from a file).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TimeLimits {
    /// Accept, decline, merge or transfer a reported case.
    pub intake_decision_days: u32,
    /// Classify and route an accepted case.
    pub classification_days: u32,
    /// Handle a routed discipline clue until a disposition sets its own limit.
    pub clue_handling_days: u32,
    /// Talk or letter inquiry (谈话函询).
    pub talk_or_letter_inquiry_days: u32,
    /// Preliminary verification (初步核实).
    pub preliminary_verification_days: u32,
    /// Decide again on a clue held for later (暂存待查).
    pub hold_review_days: u32,
    /// Answer an ordinary mass demand.
    pub mass_demand_days: u32,
    /// Answer a grave (urgent) mass demand.
    pub mass_demand_urgent_days: u32,
    /// Answer a consultation.
    pub consultation_days: u32,
    /// Submit a rectification plan after the order.
    pub rectification_plan_days: u32,
    /// The latest deadline a rectification plan may set, counted from its submission.
    pub rectification_max_days: u32,
    /// Follow-up visit and satisfaction after the rectification is complete.
    pub review_days: u32,
    /// Handle a reopened case again.
    pub reopen_handling_days: u32,
    /// After a first urging, the grace period before the deadline may be escalated.
    pub urge_grace_days: u32,
    /// The longest handling limit a router may set by override.
    pub route_limit_max_days: u32,
}

impl Default for TimeLimits {
    fn default() -> Self {
        TimeLimits {
            intake_decision_days: 3,
            classification_days: 5,
            clue_handling_days: 30,
            talk_or_letter_inquiry_days: 15,
            preliminary_verification_days: 15,
            hold_review_days: 60,
            mass_demand_days: 15,
            mass_demand_urgent_days: 7,
            consultation_days: 5,
            rectification_plan_days: 5,
            rectification_max_days: 30,
            review_days: 10,
            reopen_handling_days: 10,
            urge_grace_days: 3,
            route_limit_max_days: 60,
        }
    }
}

impl TimeLimits {
    /// Every limit by name, for validation and documentation.
    pub fn named(&self) -> [(&'static str, u32); 15] {
        [
            ("intake_decision_days", self.intake_decision_days),
            ("classification_days", self.classification_days),
            ("clue_handling_days", self.clue_handling_days),
            (
                "talk_or_letter_inquiry_days",
                self.talk_or_letter_inquiry_days,
            ),
            (
                "preliminary_verification_days",
                self.preliminary_verification_days,
            ),
            ("hold_review_days", self.hold_review_days),
            ("mass_demand_days", self.mass_demand_days),
            ("mass_demand_urgent_days", self.mass_demand_urgent_days),
            ("consultation_days", self.consultation_days),
            ("rectification_plan_days", self.rectification_plan_days),
            ("rectification_max_days", self.rectification_max_days),
            ("review_days", self.review_days),
            ("reopen_handling_days", self.reopen_handling_days),
            ("urge_grace_days", self.urge_grace_days),
            ("route_limit_max_days", self.route_limit_max_days),
        ]
    }

    /// The default handling limit for a routed case of this category and severity.
    pub fn handling_days(&self, category: Category, severity: Severity) -> u32 {
        match category {
            Category::DisciplineClue => self.clue_handling_days,
            Category::MassDemand if severity == Severity::Grave => self.mass_demand_urgent_days,
            Category::MassDemand => self.mass_demand_days,
            Category::Consultation => self.consultation_days,
        }
    }

    /// The limit a disposition sets, if it sets one (hold-for-later sets the hold review).
    pub fn disposition_days(&self, disposition: Disposition) -> Option<u32> {
        match disposition {
            Disposition::TalkOrLetterInquiry => Some(self.talk_or_letter_inquiry_days),
            Disposition::PreliminaryVerification => Some(self.preliminary_verification_days),
            Disposition::HoldForLater => Some(self.hold_review_days),
            Disposition::CloseWithoutAction => None,
        }
    }
}

/// Which discipline clues get cross-inspection (a room leads, a team from other localities of
/// the zone verifies).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CrossInspectionScope {
    /// Only clues that involve a town or street (the rule of the source).
    #[default]
    InvolvedLocalityOnly,
    /// Every discipline clue (a what-if for analysts).
    AllClues,
}

impl CrossInspectionScope {
    /// Whether a case of this category and involvement gets cross-inspection under this
    /// scope: only discipline clues, and among them those that involve a town or street
    /// unless the scope is every clue.
    pub fn applies(self, category: Category, involves_locality: bool) -> bool {
        category == Category::DisciplineClue
            && (involves_locality || self == CrossInspectionScope::AllClues)
    }
}

/// The policies a decision is taken under.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Policies {
    /// Time limits in working days.
    pub limits: TimeLimits,
    /// Which clues get cross-inspection.
    pub cross_inspection: CrossInspectionScope,
}

/// What the routing policy needs to know about a case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteInput {
    /// The case (used to spread clues evenly over the zone's rooms, deterministically).
    pub case_id: CaseId,
    /// Category given at classification.
    pub category: Category,
    /// Severity given at classification.
    pub severity: Severity,
    /// The case's locality.
    pub locality: UnitId,
    /// Whether the clue involves the town or street itself.
    pub involves_locality: bool,
    /// A department the case involves, if any.
    pub involved_department: Option<DepartmentId>,
}

/// A suggested route: data the caller may accept or override within the rules.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteSuggestion {
    /// The unit that leads the case.
    pub lead_unit: UnitId,
    /// Who answers for the problem.
    pub responsible: Vec<ResponsibleParty>,
    /// The handling time limit in working days.
    pub time_limit_days: u32,
}

impl Policies {
    /// Whether a discipline clue with this involvement gets cross-inspection.
    pub fn cross_inspection_applies(&self, category: Category, involves_locality: bool) -> bool {
        self.cross_inspection.applies(category, involves_locality)
    }

    /// Suggests a route:
    /// - a case involving its locality, and any clue under
    ///   [`CrossInspectionScope::AllClues`], is led by a room of that locality's zone, picked
    ///   deterministically from the case id so clues spread over the zone's rooms;
    /// - a case involving a department goes to the team stationed there, and the department
    ///   answers for it;
    /// - anything else is led by the locality commission, and the locality answers for it.
    pub fn suggest_route(
        &self,
        org: &Organisation,
        input: &RouteInput,
    ) -> Result<RouteSuggestion, DomainError> {
        let locality = org
            .unit(&input.locality)
            .filter(|u| u.level == Level::Locality)
            .ok_or_else(|| DomainError::UnknownUnit {
                unit: input.locality.clone(),
            })?;
        let time_limit_days = self.limits.handling_days(input.category, input.severity);
        let locality_party = ResponsibleParty::Unit(locality.id.clone());

        // A town or street never leads a case that involves it (for a clue that is the
        // cross-inspection rule; for any other matter the same conflict of interest).
        if input.involves_locality
            || self.cross_inspection_applies(input.category, input.involves_locality)
        {
            let zone = org
                .zone(&locality.zone)
                .ok_or_else(|| DomainError::UnknownUnit {
                    unit: locality.id.clone(),
                })?;
            let n = zone.rooms.len().max(1) as u128;
            let idx = (input.case_id.as_uuid().as_u128() % n) as usize;
            let lead = zone
                .rooms
                .get(idx)
                .cloned()
                .ok_or_else(|| DomainError::UnknownUnit {
                    unit: locality.id.clone(),
                })?;
            let responsible = match &input.involved_department {
                Some(d) if org.department(d).is_some() => {
                    vec![locality_party, ResponsibleParty::Department(d.clone())]
                }
                _ => vec![locality_party],
            };
            return Ok(RouteSuggestion {
                lead_unit: lead,
                responsible,
                time_limit_days,
            });
        }
        if let Some(dept) = &input.involved_department {
            if org.department(dept).is_none() {
                return Err(DomainError::UnknownDepartment {
                    department: dept.clone(),
                });
            }
            if let Some(team) = org.team_stationed_in(dept) {
                return Ok(RouteSuggestion {
                    lead_unit: team.clone(),
                    responsible: vec![ResponsibleParty::Department(dept.clone())],
                    time_limit_days,
                });
            }
            // No team is stationed there: the locality supervises the department's answer.
            return Ok(RouteSuggestion {
                lead_unit: locality.id.clone(),
                responsible: vec![ResponsibleParty::Department(dept.clone())],
                time_limit_days,
            });
        }
        Ok(RouteSuggestion {
            lead_unit: locality.id.clone(),
            responsible: vec![locality_party],
            time_limit_days,
        })
    }

    /// Suggests a route for a classified case.
    pub fn suggest_route_for(
        &self,
        org: &Organisation,
        state: &CaseState,
    ) -> Result<RouteSuggestion, DomainError> {
        let case = state.case().ok_or(DomainError::CaseNotFound)?;
        let class = case.classified()?;
        self.suggest_route(
            org,
            &RouteInput {
                case_id: case.id,
                category: class.category,
                severity: class.severity,
                locality: case.locality.clone(),
                involves_locality: class.involves_locality,
                involved_department: class.involved_department.clone(),
            },
        )
    }
}
