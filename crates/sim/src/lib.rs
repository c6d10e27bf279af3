//! caseflow-sim (work in progress).
