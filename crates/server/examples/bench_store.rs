//! Makes the store the HTTP benchmarks serve: `N` open cases (reported, waiting for the
//! intake decision) spread over the sample district's localities and villages, written with
//! `synchronous=NORMAL`, and three users with tokens (a room leader, a locality officer that
//! reports, an auditor) whose tokens go to `DIR/tokens.env`.
//!
//! `cargo run --release -p caseflow-server --example bench_store -- DIR [N]` (default 100000).

use std::sync::Arc;

use caseflow::domain::{
    Actor, CaseId, CaseKind, Channel, FocusArea, Level, ReportCase, Reporter, ReporterHandle, Role,
};
use caseflow::store::SqliteOptions;
use caseflow::{CommandEnvelope, District, Engine, EngineConfig, StoreConfig};
use caseflow_server::config::users_path_for;
use caseflow_server::users::{Access, NewUser, UserStore};
use chrono::Utc;
use uuid::Uuid;

/// Reports in flight at once (the store commits them in groups).
const CONCURRENCY: usize = 256;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = std::path::PathBuf::from(args.next().ok_or("usage: bench_store DIR [N]")?);
    let n: usize = args
        .next()
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(100_000);
    std::fs::create_dir_all(&dir)?;
    let store = dir.join("bench.db");
    for stale in [
        store.clone(),
        users_path_for(&store),
        caseflow::read_model_path(&store),
    ] {
        let _ = std::fs::remove_file(stale);
    }
    let district = District::sample()?;
    let places: Arc<Vec<(String, String)>> = Arc::new(
        district
            .org
            .units_at(Level::Village)
            .filter_map(|v| Some((v.locality.as_ref()?.to_string(), v.id.to_string())))
            .collect(),
    );
    let config = EngineConfig::with_store(
        StoreConfig::Sqlite {
            path: store.clone(),
            options: SqliteOptions::normal(),
        },
        district,
    );
    let engine = Engine::open(config).await?;
    let started = std::time::Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..CONCURRENCY {
        let engine = engine.clone();
        let places = Arc::clone(&places);
        tasks.push(tokio::spawn(async move {
            let mut i = worker;
            while i < n {
                let (locality, village) = &places[i % places.len()];
                let report = ReportCase {
                    case_id: CaseId::new(Uuid::new_v4()),
                    channel: channel_fix(i),
                    kind: if i % 3 == 0 {
                        CaseKind::Suggestion
                    } else {
                        CaseKind::Complaint
                    },
                    summary: format!("基准测试案件 {i}：小区环境问题反映"),
                    locality: locality.as_str().into(),
                    village: Some(village.as_str().into()),
                    subject: "物业公司".to_owned(),
                    focus_area: FocusArea::LivingEnvironment,
                    reporter: Reporter::Anonymous,
                    reporter_handle: ReporterHandle(Uuid::new_v4()),
                    source_department: None,
                };
                let actor = Actor::new(locality.as_str(), Role::CaseOfficer);
                let envelope = CommandEnvelope::new(Uuid::new_v4(), actor, Utc::now(), report);
                engine.execute(envelope).await.map_err(|e| e.to_string())?;
                i += CONCURRENCY;
            }
            Ok::<(), String>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let elapsed = started.elapsed();
    engine.refresh().await?;
    eprintln!(
        "{n} cases reported in {:.1} s ({:.0}/s)",
        elapsed.as_secs_f64(),
        n as f64 / elapsed.as_secs_f64()
    );
    write_users(&engine, &store, &dir)?;
    Ok(())
}

/// Department transfers need a source department; the benchmark's reports avoid that channel.
fn channel_fix(i: usize) -> Channel {
    match Channel::ALL[i % Channel::ALL.len()] {
        Channel::DepartmentTransfer => Channel::Hotline,
        c => c,
    }
}

fn write_users(
    engine: &Engine,
    store: &std::path::Path,
    dir: &std::path::Path,
) -> Result<(), Box<dyn std::error::Error>> {
    let users = UserStore::open(&users_path_for(store))?;
    let org = &engine.district().org;
    let mut env = String::new();
    for (name, access, var) in [
        (
            "bench.leader",
            Access::Staff {
                actor: Actor::new("room-1", Role::Leader),
            },
            "LEADER_TOKEN",
        ),
        (
            "bench.officer",
            Access::Staff {
                actor: Actor::new("loc-zhongshan", Role::CaseOfficer),
            },
            "OFFICER_TOKEN",
        ),
        ("bench.auditor", Access::Auditor, "AUDITOR_TOKEN"),
    ] {
        let user = NewUser {
            username: name.to_owned(),
            display_name: name.to_owned(),
            access,
            password: None,
        };
        users.add(&user, org, Utc::now())?;
        let (token, _) = users.create_token(name, "bench", None, Utc::now())?;
        env.push_str(&format!("{var}={token}\n"));
    }
    std::fs::write(dir.join("tokens.env"), env)?;
    Ok(())
}
