//! Rate limits of wecom-api.md §16: rolling 60 s and 3600 s windows per (corp, API) and
//! (IP, API); tripping a limit blocks that key for the window's length. Sim clock based.

use crate::envelope::ApiErr;
use crate::world::World;
use std::collections::VecDeque;

/// Counts one event under `key` and answers 45009 if the key is blocked or the count
/// within `window_secs` now exceeds `limit` (which then blocks the key for the window).
pub fn hit(world: &mut World, key: &str, limit: u32, window_secs: u64) -> Result<(), ApiErr> {
    let now_ms = world.now_ms();
    let block_key = format!("{key}|{window_secs}");
    if let Some(until) = world.blocks.get(&block_key) {
        if *until > now_ms {
            return Err(ApiErr::new(45009));
        }
        world.blocks.remove(&block_key);
    }
    if limit == 0 {
        return Ok(());
    }
    let now_s = now_ms / 1000;
    let buckets = world.windows.entry(block_key.clone()).or_default();
    prune(buckets, now_s, window_secs);
    match buckets.back_mut() {
        Some((s, n)) if *s == now_s => *n += 1,
        _ => buckets.push_back((now_s, 1)),
    }
    let total: u64 = buckets.iter().map(|(_, n)| *n as u64).sum();
    if total > limit as u64 {
        world.blocks.insert(block_key, now_ms + window_secs * 1000);
        return Err(ApiErr::new(45009));
    }
    Ok(())
}

/// True if `key` is blocked for the given window right now (without counting).
pub fn blocked(world: &mut World, key: &str, window_secs: u64) -> bool {
    let now_ms = world.now_ms();
    let block_key = format!("{key}|{window_secs}");
    matches!(world.blocks.get(&block_key), Some(until) if *until > now_ms)
}

fn prune(buckets: &mut VecDeque<(u64, u32)>, now_s: u64, window_secs: u64) {
    while let Some((s, _)) = buckets.front() {
        if *s + window_secs <= now_s {
            buckets.pop_front();
        } else {
            break;
        }
    }
}

/// The per-API limits for one call: per corp and per caller IP, per minute and per hour.
pub fn check_call(world: &mut World, corp: &str, ip: &str, path: &str) -> Result<(), ApiErr> {
    let s = world.settings.clone();
    hit(
        world,
        &format!("corp:{corp}:{path}"),
        s.per_corp_api_per_min,
        60,
    )?;
    hit(
        world,
        &format!("corp:{corp}:{path}"),
        s.per_corp_api_per_hour,
        3600,
    )?;
    hit(world, &format!("ip:{ip}:{path}"), s.per_ip_api_per_min, 60)?;
    hit(
        world,
        &format!("ip:{ip}:{path}"),
        s.per_ip_api_per_hour,
        3600,
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Settings;

    #[test]
    fn blocks_for_the_window_then_clears() {
        let mut w = World::new(Settings::default());
        for _ in 0..3 {
            hit(&mut w, "k", 3, 60).unwrap();
        }
        assert_eq!(hit(&mut w, "k", 3, 60).unwrap_err().errcode, 45009);
        w.clock_offset_ms += 30_000;
        assert!(hit(&mut w, "k", 3, 60).is_err());
        w.clock_offset_ms += 31_000;
        hit(&mut w, "k", 3, 60).unwrap();
    }
}
