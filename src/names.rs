//! Internal ids out of displayed text: the lower crates print a host
//! bridge as `hb#0` and a provider as `provider#4` (they have no topology
//! at hand); every text the CLI shows from them goes through [`named`],
//! which puts the host bridge's name and the provider's BDF in their place,
//! so no output carries an id a user cannot look up.

use dma_api::topology::DeviceId;
use dma_api::types::ProviderId;
use dma_sim::machine::Machine;

/// `text` with every `hb#N` replaced by host bridge N's name and every
/// `provider#N` by that function's BDF. An id the machine does not know is
/// left as it is (it names a bug, not a device).
pub(crate) fn named(text: &str, m: &Machine) -> String {
    let t = &m.topology;
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    loop {
        let next = [("hb#", true), ("provider#", false)]
            .into_iter()
            .filter_map(|(tag, hb)| rest.find(tag).map(|i| (i, tag, hb)))
            .min_by_key(|(i, _, _)| *i);
        let Some((i, tag, hb)) = next else {
            out.push_str(rest);
            return out;
        };
        out.push_str(&rest[..i]);
        let after = &rest[i + tag.len()..];
        let digits = after.len() - after.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        let name = after[..digits].parse::<usize>().ok().and_then(|n| {
            if hb {
                t.host_bridge_ids()
                    .find(|(id, _)| id.index() == n)
                    .map(|(_, h)| h.name.clone())
            } else {
                let id = DeviceId::from_provider(ProviderId::new(u32::try_from(n).ok()?));
                t.device(id).map(|d| d.bdf.to_string())
            }
        });
        match name {
            Some(name) => out.push_str(&name),
            None => out.push_str(&rest[i..i + tag.len() + digits]),
        }
        rest = &after[digits..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_become_names() {
        let m = Machine::reference().unwrap();
        let nvme0 = m
            .topology
            .devices()
            .find(|(_, d)| d.name.as_deref() == Some("nvme0"))
            .map(|(id, _)| id.index())
            .unwrap();
        let text =
            format!("0000:02:00.0 -> hb#0\nkind: peer-bar(provider#{nvme0}) hb#7 provider#999 hb#");
        assert_eq!(
            named(&text, &m),
            "0000:02:00.0 -> pci0000:00\nkind: peer-bar(0000:03:00.0) hb#7 provider#999 hb#"
        );
    }
}
