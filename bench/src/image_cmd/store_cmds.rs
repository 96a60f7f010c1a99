//! `vclab image ls | inspect NAME | rm NAME` over the store.

use vclab_image::store::{Reference, Store};

fn mib(bytes: u64) -> String {
    format!("{:.2} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// `vclab image ls`.
pub fn ls() -> anyhow::Result<i32> {
    let images = Store::from_env().list()?;
    println!("{:<32} {:<20} {:>12}", "IMAGE", "DIGEST", "SIZE");
    for i in images {
        let short: String = i
            .digest
            .trim_start_matches("sha256:")
            .chars()
            .take(12)
            .collect();
        println!(
            "{:<32} {:<20} {:>12}",
            i.reference.to_string(),
            short,
            mib(i.size)
        );
    }
    Ok(0)
}

/// `vclab image inspect NAME`: the config (JSON) and the layers with sizes.
pub fn inspect(name: &str) -> anyhow::Result<i32> {
    let r = Reference::parse(name)?;
    let (_, img) = Store::from_env().image(&r)?;
    let layers: Vec<serde_json::Value> = img
        .layers()
        .iter()
        .zip(img.config.rootfs().diff_ids())
        .map(|(d, diff_id)| {
            serde_json::json!({
                "digest": d.digest().to_string(),
                "diff_id": diff_id,
                "media_type": d.media_type().to_string(),
                "size": d.size(),
            })
        })
        .collect();
    let total: u64 = img.layers().iter().map(|d| d.size()).sum();
    let out = serde_json::json!({
        "image": r.to_string(),
        "manifest_digest": img.descriptor.digest().to_string(),
        "config": serde_json::to_value(&img.config)?,
        "layers": layers,
        "size": total,
    });
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(0)
}

/// `vclab image rm NAME`.
pub fn rm(name: &str) -> anyhow::Result<i32> {
    let r = Reference::parse(name)?;
    Store::from_env().remove(&r)?;
    println!("removed {r}");
    Ok(0)
}
