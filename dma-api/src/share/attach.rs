//! Attaching an importer and what it does with its attachment: the
//! negotiation (`dma_buf_dynamic_attach` + the exporter's `attach`), map
//! and unmap (`dma_buf_map_attachment` / `dma_buf_unmap_attachment`), pin
//! and unpin, fences, the revocation acknowledgement, detach.

use super::action::{Action, AttachAsk, Negotiation, RangeVerdict};
use super::buffer::{Att, Inner, Phase, SharedBuffer, State};
use super::caps::{ImporterCaps, Placement};
use super::error::ShareError;
use super::fence::{Fence, SpinWait, WaitBudget};
use super::ids::{AttachId, MapId};
use super::importer::ImporterOps;
use super::map::{self, LinkOffsets, LiveMap, ShareMapping};
use super::reason::{Reason, ReasonSource};
use crate::bdf::Bdf;
use crate::device::DmaDevice;
use crate::direction::Direction;
use alloc::sync::Arc;
use alloc::vec::Vec;

/// The placement every range accepts, the importer's least preferred
/// among them; `None` if a range is unreachable or lands on a placement the
/// importer does not accept.
fn fit(verdicts: &[RangeVerdict], caps: &ImporterCaps) -> Option<Placement> {
    let mut worst: Option<(usize, Placement)> = None;
    for v in verdicts {
        let p = *v.placement.as_ref().ok()?;
        let rank = caps.rank(p)?;
        if worst.is_none_or(|(r, _)| rank > r) {
            worst = Some((rank, p));
        }
    }
    worst.map(|(_, p)| p)
}

/// Why the buffer as it is does not suit the importer.
fn misfit_reasons(verdicts: &[RangeVerdict], caps: &ImporterCaps) -> Vec<Reason> {
    let mut out = Vec::new();
    for v in verdicts {
        match &v.placement {
            Err(chain) => out.extend(chain.iter().cloned()),
            Ok(p) if !caps.accepts(*p) => out.push(Reason::new(
                ReasonSource::Importer,
                alloc::format!(
                    "[{}, +{:#x}) would be {p}, which the importer does not accept",
                    v.phys,
                    v.len
                ),
            )),
            Ok(_) => {}
        }
    }
    out.dedup();
    out
}

fn no_ram(importer: Bdf, caps: &ImporterCaps, mut reasons: Vec<Reason>) -> ShareError {
    reasons.push(Reason::new(
        ReasonSource::Importer,
        "system RAM is not among the accepted placements",
    ));
    ShareError::NoCommonPlacement {
        importer,
        accepts: caps.placements.clone(),
        reasons,
    }
}

impl SharedBuffer {
    /// Attaches `dev` with `caps`; `ops` receives the notifications. The
    /// dispatcher's verdict per range decides the placement; when it does
    /// not suit the importer the exporter is asked, and may redirect,
    /// migrate or refuse. On any error nothing is attached (a migration the
    /// exporter made stays: the buffer is in RAM for everyone).
    pub fn attach(
        &self,
        dev: Arc<DmaDevice>,
        caps: ImporterCaps,
        ops: Arc<dyn ImporterOps>,
    ) -> Result<Attachment, ShareError> {
        let inner = &self.0;
        let mut st = inner.resv.lock("attach", None)?;
        if st.phase != Phase::Live {
            return Err(ShareError::Revoked { buffer: inner.id });
        }
        let importer = dev.bdf();
        let exporter = inner.exporter_bdf;
        if !caps.dynamic && !inner.exporter.caps().pin {
            return Err(ShareError::PinUnsupported { exporter });
        }
        let dir = caps.access.direction();
        let verdicts = inner.verdicts(&st, &dev, dir);
        let mut policy_redirect = false;
        let (placement, action, redirect, reasons) = match fit(&verdicts, &caps) {
            Some(p) => (p, Action::None, None, Vec::new()),
            None => {
                let mut reasons = misfit_reasons(&verdicts, &caps);
                if caps.placements.is_empty() {
                    reasons.push(Reason::new(ReasonSource::Importer, "accepts no placement"));
                }
                let ask = AttachAsk {
                    importer,
                    caps: &caps,
                    verdicts: &verdicts,
                };
                let action = inner.exporter.answer(&ask);
                reasons.insert(0, inner.exporter_reason(&action));
                match action {
                    Action::None => {
                        return Err(ShareError::NoCommonPlacement {
                            importer,
                            accepts: caps.placements.clone(),
                            reasons,
                        })
                    }
                    Action::Refuse(_) => {
                        return Err(ShareError::Refused {
                            exporter,
                            importer,
                            reasons,
                        })
                    }
                    Action::Redirect(to) => {
                        if !caps.accepts(Placement::SystemRam) {
                            return Err(no_ram(importer, &caps, reasons));
                        }
                        inner.check_redirect(&to)?;
                        policy_redirect = inner.install_client_redirect(importer, &to);
                        let own = (!policy_redirect).then(|| to.clone());
                        (Placement::SystemRam, Action::Redirect(to), own, reasons)
                    }
                    Action::Migrate => {
                        if !caps.accepts(Placement::SystemRam) {
                            return Err(no_ram(importer, &caps, reasons));
                        }
                        inner.migrate_locked(&mut st, WaitBudget::default(), &SpinWait)?;
                        let after = inner.verdicts(&st, &dev, dir);
                        let Some(p) = fit(&after, &caps) else {
                            reasons.extend(misfit_reasons(&after, &caps));
                            return Err(ShareError::NoCommonPlacement {
                                importer,
                                accepts: caps.placements.clone(),
                                reasons,
                            });
                        };
                        (p, Action::Migrate, None, reasons)
                    }
                }
            }
        };
        let id = AttachId(st.next_id());
        let negotiation = Negotiation {
            importer,
            placement,
            action,
            verdicts,
            reasons,
        };
        st.atts.insert(
            id,
            Att {
                dev,
                caps,
                ops,
                negotiation,
                redirect,
                policy_redirect,
                pinned: false,
                fences: Vec::new(),
                acked: false,
            },
        );
        Ok(Attachment {
            buf: self.clone(),
            id,
            importer,
            detached: false,
        })
    }
}

/// After `a` left: its redirect leaves the policies (unless another
/// attachment of its device still uses it).
fn inner_clear(inner: &Inner, st: &State, a: &Att) {
    if a.policy_redirect {
        inner.clear_client_redirect(st, a.dev.bdf());
    }
}

/// One importer's attachment (Linux `struct dma_buf_attachment`). Dropping
/// it detaches, tearing down its mappings.
#[derive(Debug)]
pub struct Attachment {
    buf: SharedBuffer,
    id: AttachId,
    importer: Bdf,
    detached: bool,
}

impl Attachment {
    /// Its name.
    pub fn id(&self) -> AttachId {
        self.id
    }

    /// The importing device.
    pub fn importer(&self) -> Bdf {
        self.importer
    }

    /// The buffer.
    pub fn buffer(&self) -> &SharedBuffer {
        &self.buf
    }

    fn inner(&self) -> &Inner {
        &self.buf.0
    }

    fn with<R>(
        &self,
        call: &'static str,
        f: impl FnOnce(&Inner, &mut State) -> Result<R, ShareError>,
    ) -> Result<R, ShareError> {
        let inner = self.inner();
        let mut st = inner.resv.lock(call, Some(self.id))?;
        if !st.atts.contains_key(&self.id) {
            return Err(ShareError::Detached {
                attachment: self.id,
            });
        }
        f(inner, &mut st)
    }

    /// What was negotiated.
    pub fn negotiation(&self) -> Result<Negotiation, ShareError> {
        self.with("negotiation", |_, st| {
            Ok(st.atts[&self.id].negotiation.clone())
        })
    }

    /// `dma_buf_map_attachment(dir)` under the reservation: the ranges where
    /// the data lives now (or this importer's redirect) through the
    /// device's dispatcher; a DMA-only view comes back. Fails with
    /// [`ShareError::Revoked`] while the buffer is revoked,
    /// [`ShareError::AccessDenied`] outside the negotiated access,
    /// [`ShareError::NotPinned`] for a non-dynamic importer without a pin.
    pub fn map(&self, dir: Direction) -> Result<ShareMapping, ShareError> {
        self.map_with(dir, LinkOffsets::Running)
    }

    /// [`Attachment::map`] with an explicit IOVA layout; only the tests of
    /// the Linux offset-0 bug use anything but [`LinkOffsets::Running`].
    pub fn map_with(
        &self,
        dir: Direction,
        offsets: LinkOffsets,
    ) -> Result<ShareMapping, ShareError> {
        let id = self.id;
        self.with("map", |inner, st| {
            if st.phase != Phase::Live {
                return Err(ShareError::Revoked { buffer: inner.id });
            }
            let a = &st.atts[&id];
            if !a.caps.access.covers(dir) {
                return Err(ShareError::AccessDenied {
                    attachment: id,
                    asked: dir,
                    negotiated: a.caps.access.direction(),
                });
            }
            if !a.caps.dynamic && !a.pinned {
                return Err(ShareError::NotPinned { attachment: id });
            }
            let ranges = match &a.redirect {
                Some(r) => r.clone(),
                None => inner.current(st),
            };
            let dev = a.dev.clone();
            let (backing, segments) = map::map_ranges(&dev, &ranges, dir, offsets)?;
            let mid = MapId(st.next_id());
            st.maps.insert(
                mid,
                LiveMap {
                    att: id,
                    dev,
                    dir,
                    backing,
                },
            );
            Ok(ShareMapping {
                id: mid,
                dir,
                segments,
            })
        })
    }

    /// `dma_buf_unmap_attachment`: a second unmap of the same mapping is
    /// [`ShareError::NotMapped`].
    pub fn unmap(&self, mapping: MapId) -> Result<(), ShareError> {
        let id = self.id;
        let inner = self.inner();
        let mut st = inner.resv.lock("unmap", Some(id))?;
        map::unmap_locked(&mut st, id, mapping)
    }

    /// `dma_buf_pin`: only where the exporter declares the capability.
    pub fn pin(&self) -> Result<(), ShareError> {
        let id = self.id;
        self.with("pin", |inner, st| {
            if !inner.exporter.caps().pin {
                return Err(ShareError::PinUnsupported {
                    exporter: inner.exporter_bdf,
                });
            }
            let a = st
                .atts
                .get_mut(&id)
                .ok_or(ShareError::Detached { attachment: id })?;
            if a.pinned {
                return Err(ShareError::AlreadyPinned { attachment: id });
            }
            a.pinned = true;
            Ok(())
        })
    }

    /// `dma_buf_unpin`: without a pin, [`ShareError::NotPinned`].
    pub fn unpin(&self) -> Result<(), ShareError> {
        let id = self.id;
        self.with("unpin", |_, st| {
            let a = st
                .atts
                .get_mut(&id)
                .ok_or(ShareError::Detached { attachment: id })?;
            if !a.pinned {
                return Err(ShareError::NotPinned { attachment: id });
            }
            a.pinned = false;
            Ok(())
        })
    }

    /// Adds a completion for DMA still in flight on this attachment's
    /// mappings; invalidation waits for it.
    pub fn add_fence(&self, fence: Fence) -> Result<(), ShareError> {
        let id = self.id;
        self.with("add_fence", |_, st| {
            if let Some(a) = st.atts.get_mut(&id) {
                a.fences.push(fence);
            }
            Ok(())
        })
    }

    /// Acknowledges a revocation from outside the notification (after
    /// unmapping).
    pub fn ack_revoke(&self) -> Result<(), ShareError> {
        let id = self.id;
        self.with("ack_revoke", |_, st| {
            if let Some(a) = st.atts.get_mut(&id) {
                a.acked = true;
            }
            Ok(())
        })
    }

    /// This attachment's live mappings.
    pub fn live_mappings(&self) -> Result<usize, ShareError> {
        let id = self.id;
        self.with("live_mappings", |_, st| {
            Ok(st.maps.values().filter(|m| m.att == id).count())
        })
    }

    /// `dma_buf_detach`: refused while mappings are live
    /// ([`ShareError::StillMapped`]); a second detach is
    /// [`ShareError::Detached`].
    pub fn detach(&mut self) -> Result<(), ShareError> {
        let id = self.id;
        self.with("detach", |inner, st| {
            let live = st.maps.values().filter(|m| m.att == id).count();
            if live != 0 {
                return Err(ShareError::StillMapped {
                    attachment: id,
                    live,
                });
            }
            if let Some(a) = st.atts.remove(&id) {
                inner_clear(inner, st, &a);
            }
            Ok(())
        })?;
        self.detached = true;
        Ok(())
    }
}

impl Drop for Attachment {
    /// Detaches, unmapping what is still mapped; DMA errors go to the
    /// context's drop-error record.
    fn drop(&mut self) {
        if self.detached {
            return;
        }
        let id = self.id;
        let inner = &self.buf.0;
        let Ok(mut st) = inner.resv.lock("drop", Some(id)) else {
            return;
        };
        let maps: Vec<MapId> = st
            .maps
            .iter()
            .filter(|(_, m)| m.att == id)
            .map(|(k, _)| *k)
            .collect();
        for m in maps {
            if let Err(ShareError::Dma(e)) = map::unmap_locked(&mut st, id, m) {
                inner.ctx.report_drop_error(e);
            }
        }
        if let Some(a) = st.atts.remove(&id) {
            inner_clear(inner, &st, &a);
        }
    }
}
