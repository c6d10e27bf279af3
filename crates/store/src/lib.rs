//! caseflow-store (work in progress).
