//! caseflow-projections (work in progress).
