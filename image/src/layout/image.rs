//! Images in a layout: write one (config → manifest → index entry tagged
//! with `org.opencontainers.image.ref.name`) and read one back by tag,
//! every blob checked.

use std::collections::HashMap;

use oci_spec::image::{
    Arch, Config, Descriptor, History, HistoryBuilder, ImageConfiguration,
    ImageConfigurationBuilder, ImageManifest, ImageManifestBuilder, MediaType, Os, RootFsBuilder,
    ANNOTATION_REF_NAME, SCHEMA_VERSION,
};

use super::{epoch::rfc3339, json, Layout, LayoutError};

/// An image to write: its layers are already blobs of the layout.
#[derive(Debug, Clone)]
pub struct NewImage {
    /// The tag (`org.opencontainers.image.ref.name`); an image with the
    /// same tag is replaced in the index.
    pub tag: String,
    /// Seconds since 1970 for `created` (SOURCE_DATE_EPOCH).
    pub created: u64,
    /// The runtime config (entrypoint, cmd, env, workdir, user, labels,
    /// exposed ports).
    pub config: Option<Config>,
    /// Layer descriptors and their diff_ids (`sha256:` of the tar), base
    /// first.
    pub layers: Vec<(Descriptor, String)>,
    /// One entry per step, base first; those without `empty_layer` match
    /// `layers` one to one. Empty: one entry per layer is made.
    pub history: Vec<History>,
}

/// What [`Layout::write_image`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenImage {
    /// The manifest (its digest is the image's identity).
    pub manifest: Descriptor,
    /// The config blob.
    pub config: Descriptor,
}

/// An image read back from a layout, every blob checked.
#[derive(Debug, Clone)]
pub struct Image {
    /// The tag it was found by.
    pub tag: String,
    /// The manifest's descriptor from the index.
    pub descriptor: Descriptor,
    /// The manifest.
    pub manifest: ImageManifest,
    /// The config.
    pub config: ImageConfiguration,
}

impl Image {
    /// The layer descriptors, base first.
    pub fn layers(&self) -> &[Descriptor] {
        self.manifest.layers()
    }
}

/// A history entry for one step, dated `created` (seconds since 1970).
pub fn history_entry(
    created_by: &str,
    empty_layer: bool,
    created: u64,
) -> Result<History, LayoutError> {
    let mut b = HistoryBuilder::default()
        .created(rfc3339(created))
        .created_by(created_by.to_string());
    if empty_layer {
        b = b.empty_layer(true);
    }
    b.build().map_err(|e| LayoutError::Build {
        what: "history entry",
        reason: e.to_string(),
    })
}

/// OCI tag rules (`[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`).
pub fn check_tag(tag: &str) -> Result<(), LayoutError> {
    let mut bytes = tag.bytes();
    let first_ok = bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_');
    let rest_ok = bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if first_ok && rest_ok && tag.len() <= 128 {
        Ok(())
    } else {
        Err(LayoutError::BadTag {
            tag: tag.to_string(),
        })
    }
}

fn build_err(what: &'static str) -> impl FnOnce(oci_spec::OciSpecError) -> LayoutError {
    move |e| LayoutError::Build {
        what,
        reason: e.to_string(),
    }
}

/// Layer media types vclab unpacks (gzip'd or plain tar).
fn is_tar_layer(media_type: &MediaType) -> bool {
    match media_type {
        MediaType::ImageLayer
        | MediaType::ImageLayerGzip
        | MediaType::ImageLayerNonDistributable
        | MediaType::ImageLayerNonDistributableGzip => true,
        MediaType::Other(s) => s == "application/vnd.docker.image.rootfs.diff.tar.gzip",
        _ => false,
    }
}

impl Layout {
    /// Writes `image`: config blob, manifest blob, then the index entry
    /// (replacing one with the same tag).
    pub fn write_image(&self, image: &NewImage) -> Result<WrittenImage, LayoutError> {
        check_tag(&image.tag)?;
        let history = if image.history.is_empty() {
            (0..image.layers.len())
                .map(|i| history_entry(&format!("layer {}", i + 1), false, image.created))
                .collect::<Result<Vec<_>, _>>()?
        } else {
            image.history.clone()
        };
        let with_layer = history
            .iter()
            .filter(|h| !h.empty_layer().unwrap_or(false))
            .count();
        if with_layer != image.layers.len() {
            return Err(LayoutError::Build {
                what: "config",
                reason: format!(
                    "{} history entries with a layer for {} layers",
                    with_layer,
                    image.layers.len()
                ),
            });
        }
        let rootfs = RootFsBuilder::default()
            .typ("layers")
            .diff_ids(
                image
                    .layers
                    .iter()
                    .map(|(_, d)| d.clone())
                    .collect::<Vec<_>>(),
            )
            .build()
            .map_err(build_err("rootfs"))?;
        let mut config = ImageConfigurationBuilder::default()
            .created(rfc3339(image.created))
            .architecture(Arch::Amd64)
            .os(Os::Linux)
            .rootfs(rootfs)
            .history(history);
        if let Some(c) = &image.config {
            config = config.config(c.clone());
        }
        let config = config.build().map_err(build_err("config"))?;
        let config_bytes = json::canonical(&config).map_err(|e| LayoutError::Build {
            what: "config",
            reason: e.to_string(),
        })?;
        let config_desc = self.put_blob(MediaType::ImageConfig, &config_bytes)?;
        let manifest = ImageManifestBuilder::default()
            .schema_version(SCHEMA_VERSION)
            .media_type(MediaType::ImageManifest)
            .config(config_desc.clone())
            .layers(
                image
                    .layers
                    .iter()
                    .map(|(d, _)| d.clone())
                    .collect::<Vec<_>>(),
            )
            .build()
            .map_err(build_err("manifest"))?;
        let manifest_bytes = json::canonical(&manifest).map_err(|e| LayoutError::Build {
            what: "manifest",
            reason: e.to_string(),
        })?;
        let mut manifest_desc = self.put_blob(MediaType::ImageManifest, &manifest_bytes)?;
        let mut index_entry = manifest_desc.clone();
        index_entry.set_annotations(Some(HashMap::from([(
            ANNOTATION_REF_NAME.to_string(),
            image.tag.clone(),
        )])));
        let mut index = self.index()?;
        let mut manifests: Vec<Descriptor> = index
            .manifests()
            .iter()
            .filter(|d| ref_name(d) != Some(image.tag.as_str()))
            .cloned()
            .collect();
        manifests.push(index_entry);
        manifests.sort_by(|a, b| ref_name(a).cmp(&ref_name(b)));
        index.set_manifests(manifests);
        index.set_media_type(Some(MediaType::ImageIndex));
        self.write_index(&index)?;
        manifest_desc.set_annotations(None);
        Ok(WrittenImage {
            manifest: manifest_desc,
            config: config_desc,
        })
    }

    /// The tags of the index, in index order.
    pub fn tags(&self) -> Result<Vec<String>, LayoutError> {
        Ok(self
            .index()?
            .manifests()
            .iter()
            .filter_map(|d| ref_name(d).map(str::to_string))
            .collect())
    }

    /// The manifest `desc` names, checked.
    pub fn read_manifest(&self, desc: &Descriptor) -> Result<ImageManifest, LayoutError> {
        if desc.media_type() != &MediaType::ImageManifest {
            return Err(LayoutError::Unsupported {
                path: self.root.clone(),
                what: "manifest",
                digest: desc.digest().to_string(),
                media_type: desc.media_type().to_string(),
                hint: "an image manifest, application/vnd.oci.image.manifest.v1+json",
            });
        }
        let bytes = self.read_blob(desc)?;
        ImageManifest::from_reader(bytes.as_slice()).map_err(|e| LayoutError::BadJson {
            path: self.blob_path(desc.digest().as_ref()).unwrap_or_default(),
            what: "image manifest",
            reason: e.to_string(),
        })
    }

    /// Reads the image tagged `tag` (`None`: `latest`, or the only one),
    /// checking every blob: manifest, config and each layer.
    pub fn read_image(&self, tag: Option<&str>) -> Result<Image, LayoutError> {
        let index = self.index()?;
        let entries = index.manifests();
        let available = || {
            let tags: Vec<&str> = entries.iter().filter_map(ref_name).collect();
            if tags.is_empty() {
                "none".to_string()
            } else {
                tags.join(", ")
            }
        };
        let found =
            match tag {
                Some(t) => entries.iter().find(|d| ref_name(d) == Some(t)),
                None => entries.iter().find(|d| ref_name(d) == Some("latest")).or(
                    if entries.len() == 1 {
                        entries.first()
                    } else {
                        None
                    },
                ),
            };
        let desc = match (found, tag) {
            (Some(d), _) => d.clone(),
            (None, Some(t)) => {
                return Err(LayoutError::NoSuchTag {
                    path: self.root.clone(),
                    tag: t.to_string(),
                    available: available(),
                })
            }
            (None, None) if entries.is_empty() => {
                return Err(LayoutError::NoSuchTag {
                    path: self.root.clone(),
                    tag: "latest".to_string(),
                    available: available(),
                })
            }
            (None, None) => {
                return Err(LayoutError::AmbiguousTag {
                    path: self.root.clone(),
                    available: available(),
                })
            }
        };
        let manifest = self.read_manifest(&desc)?;
        let config_bytes = self.read_blob(manifest.config())?;
        let config = ImageConfiguration::from_reader(config_bytes.as_slice()).map_err(|e| {
            LayoutError::BadJson {
                path: self
                    .blob_path(manifest.config().digest().as_ref())
                    .unwrap_or_default(),
                what: "image config",
                reason: e.to_string(),
            }
        })?;
        for layer in manifest.layers() {
            if !is_tar_layer(layer.media_type()) {
                return Err(LayoutError::Unsupported {
                    path: self.root.clone(),
                    what: "layer",
                    digest: layer.digest().to_string(),
                    media_type: layer.media_type().to_string(),
                    hint: "tar or tar+gzip layers",
                });
            }
            self.verify_blob(layer)?;
        }
        let diff_ids = config.rootfs().diff_ids().len();
        if diff_ids != manifest.layers().len() {
            return Err(LayoutError::Inconsistent {
                path: self.root.clone(),
                digest: desc.digest().to_string(),
                why: format!(
                    "{} layers in the manifest, {} diff_ids in the config",
                    manifest.layers().len(),
                    diff_ids
                ),
            });
        }
        Ok(Image {
            tag: ref_name(&desc).unwrap_or("").to_string(),
            descriptor: desc,
            manifest,
            config,
        })
    }
}

fn ref_name(desc: &Descriptor) -> Option<&str> {
    desc.annotations()
        .as_ref()
        .and_then(|a| a.get(ANNOTATION_REF_NAME))
        .map(String::as_str)
}
