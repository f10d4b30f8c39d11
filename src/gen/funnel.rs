//! One message through its channel's funnel: sent → delivered → opened/read →
//! clicks, with the failures, unsubscribes and subscriptions each channel has.
//! Every event written exists in its channel (a test checks it against the
//! catalog). Rates: `docs/data.md`.

use rand::Rng;

use super::dims::Campaign;
use crate::catalog::{Channel, Event};

/// One event row, with dictionary keys for channel, event and link.
#[derive(Debug, Clone, Copy)]
pub struct Row {
    pub profile_id: i64,
    pub channel: Channel,
    pub event: Event,
    pub ts: i64,
    pub message_id: Option<i64>,
    pub campaign_id: Option<i64>,
    pub template_id: Option<i64>,
    pub link: Option<u32>,
}

/// Per-channel rates: delivery, open (of delivered), read, click (of the
/// engaged step), unsubscribe click.
struct Rates {
    delivered: f64,
    opened: f64,
    read: f64,
    click: f64,
    unsubscribe: f64,
}

fn rates(channel: Channel) -> Rates {
    use Channel::*;
    let (delivered, opened, read, click, unsubscribe) = match channel {
        Email => (0.97, 0.24, 0.55, 0.13, 0.003),
        Sms => (0.95, 0.18, 0.0, 0.06, 0.002),
        Push => (0.90, 0.09, 0.0, 0.45, 0.001),
        VkNotify => (0.94, 0.0, 0.55, 0.05, 0.002),
        Whatsapp | Viber => (0.93, 0.0, 0.65, 0.08, 0.0),
        TelegramBot | MaxBot => (0.95, 0.0, 0.0, 0.09, 0.0),
        TelegramGroup | MaxGroup => (0.97, 0.0, 0.0, 0.0, 0.0),
    };
    Rates {
        delivered,
        opened,
        read,
        click,
        unsubscribe,
    }
}

/// Minutes, exponentially distributed with the given mean, in microseconds.
fn delay(rng: &mut impl Rng, mean_minutes: f64) -> i64 {
    let u: f64 = rng.random_range(f64::EPSILON..1.0);
    (-u.ln() * mean_minutes * 60_000_000.0) as i64 + 1_000_000
}

/// Appends the events of one message.
pub fn message(
    rng: &mut impl Rng,
    c: &Campaign,
    profile_id: i64,
    message_id: i64,
    sent_at: i64,
    out: &mut Vec<Row>,
) {
    use Channel::*;
    let ch = c.channel;
    let template = c.templates[rng.random_range(0..c.templates.len())];
    let row = |event: Event, ts: i64, link: Option<u32>| Row {
        profile_id,
        channel: ch,
        event,
        ts,
        message_id: Some(message_id),
        campaign_id: Some(c.id),
        template_id: Some(template),
        link,
    };
    let r = rates(ch);
    out.push(row(Event::Sent, sent_at, None));

    // Sending policies stop a few messages before delivery.
    if Event::PolicyViolation.exists_in(ch) && rng.random_bool(0.01) {
        out.push(row(Event::PolicyViolation, sent_at + 500_000, None));
        return;
    }
    let delivered_at = sent_at + rng.random_range(1_000_000..90_000_000);
    if !rng.random_bool(r.delivered) {
        if Event::HardBounce.exists_in(ch) && rng.random_bool(0.3) {
            out.push(row(Event::HardBounce, delivered_at, None));
        } else if Event::NonDelivery.exists_in(ch) {
            out.push(row(Event::NonDelivery, delivered_at, None));
        }
        return;
    }
    out.push(row(Event::Delivered, delivered_at, None));

    // Opened (email, sms, push), then read where the channel records it.
    let mut engaged_at = None;
    if r.opened > 0.0 && rng.random_bool(r.opened) {
        let opened_at = delivered_at + delay(rng, 180.0);
        out.push(row(Event::Opened, opened_at, None));
        engaged_at = Some(opened_at);
        if ch == Email && rng.random_bool(r.read) {
            // The read pixel fires 12 s after open.
            out.push(row(Event::Read, opened_at + 12_000_000, None));
        }
    } else if r.read > 0.0 && ch != Email && rng.random_bool(r.read) {
        let read_at = delivered_at + delay(rng, 60.0);
        out.push(row(Event::Read, read_at, None));
        engaged_at = Some(read_at);
    } else if matches!(ch, TelegramBot | MaxBot) && rng.random_bool(0.5) {
        // Bots record no open: clicks follow delivery directly.
        engaged_at = Some(delivered_at);
    }

    if let Some(at) = engaged_at {
        if r.click > 0.0 && rng.random_bool(r.click) {
            clicks(rng, c, ch, at, &row, out);
        }
        if r.unsubscribe > 0.0 && rng.random_bool(r.unsubscribe * 4.0) {
            out.push(row(Event::UnsubscribeClick, at + delay(rng, 2.0), None));
        }
    }

    // Messenger subscriptions; double opt-in confirmations.
    if Event::Subscribed.exists_in(ch) {
        if rng.random_bool(0.01) {
            out.push(row(
                Event::Subscribed,
                delivered_at + delay(rng, 600.0),
                None,
            ));
            if Event::SubscriptionConfirmed.exists_in(ch) && rng.random_bool(0.7) {
                out.push(row(
                    Event::SubscriptionConfirmed,
                    delivered_at + delay(rng, 700.0),
                    None,
                ));
            }
        }
        if rng.random_bool(0.004) {
            out.push(row(
                Event::Unsubscribed,
                delivered_at + delay(rng, 300.0),
                None,
            ));
        }
    } else if ch == Email && rng.random_bool(0.004) {
        out.push(row(
            Event::SubscriptionConfirmed,
            delivered_at + delay(rng, 30.0),
            None,
        ));
    }
}

/// Clicks of an engaged recipient: 1 or more, each on a link of the campaign.
fn clicks(
    rng: &mut impl Rng,
    c: &Campaign,
    ch: Channel,
    after: i64,
    row: &impl Fn(Event, i64, Option<u32>) -> Row,
    out: &mut Vec<Row>,
) {
    let messenger = Event::UniqueClick.exists_in(ch);
    let mut n = 1;
    while n < 6 && rng.random_bool(0.3) {
        n += 1;
    }
    let mut at = after;
    let mut clicked: Vec<u32> = Vec::new();
    for k in 0..n {
        at += delay(rng, 3.0);
        let link = c.links[rng.random_range(0..c.links.len())];
        // Email, sms, push and vk_notify record one click for the message.
        if k == 0 || messenger {
            out.push(row(Event::Click, at, None));
        }
        if Event::LinkClick.exists_in(ch) {
            out.push(row(Event::LinkClick, at, Some(link)));
        }
        if messenger {
            if k == 0 {
                out.push(row(Event::UniqueClick, at, None));
            }
            if !clicked.contains(&link) {
                clicked.push(link);
                out.push(row(Event::UniqueLinkClick, at, Some(link)));
            }
        }
    }
}
