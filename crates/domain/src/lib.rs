//! caseflow-domain (work in progress).
