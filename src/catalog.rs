//! The channel × event table of SPEC §4: the type system of the language.
//!
//! This is the one place that says which event exists in which channel. The
//! checker, the REPL's completion, the generator and `docs/catalog.md` all read
//! it; nothing else in the crate lists events or channels.

use std::fmt;

/// A communication channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Channel {
    Email,
    Sms,
    Push,
    TelegramBot,
    TelegramGroup,
    MaxBot,
    MaxGroup,
    Whatsapp,
    Viber,
    VkNotify,
}

/// An event type recorded for a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Event {
    Sent,
    Delivered,
    Opened,
    Read,
    Click,
    LinkClick,
    UnsubscribeClick,
    UniqueClick,
    UniqueLinkClick,
    NonDelivery,
    PolicyViolation,
    HardBounce,
    Subscribed,
    Unsubscribed,
    SubscriptionConfirmed,
}

use Channel::*;

/// Every channel, in catalog order.
pub const CHANNELS: [Channel; 10] = [
    Email,
    Sms,
    Push,
    TelegramBot,
    TelegramGroup,
    MaxBot,
    MaxGroup,
    Whatsapp,
    Viber,
    VkNotify,
];

/// One row of the catalog: an event, what it means, and where it exists.
#[derive(Debug)]
pub struct EventInfo {
    pub event: Event,
    pub name: &'static str,
    pub description: &'static str,
    pub channels: &'static [Channel],
}

/// The catalog itself (SPEC §4), one row per event.
pub const EVENTS: [EventInfo; 15] = [
    EventInfo {
        event: Event::Sent,
        name: "sent",
        description: "the message was formed and handed to the sending module",
        channels: &CHANNELS,
    },
    EventInfo {
        event: Event::Delivered,
        name: "delivered",
        description: "the provider confirmed that it accepted the message for delivery",
        channels: &CHANNELS,
    },
    EventInfo {
        event: Event::Opened,
        name: "opened",
        description: "the recipient opened the message (email: the open pixel)",
        channels: &[Email, Sms, Push],
    },
    EventInfo {
        event: Event::Read,
        name: "read",
        description: "the message was read (email: the read pixel fires 12 s after open)",
        channels: &[Email, Whatsapp, Viber, VkNotify],
    },
    EventInfo {
        event: Event::Click,
        name: "click",
        description: "a click in the message (email, sms, push, vk_notify: any click; bots and messengers: each click)",
        channels: &[Email, Sms, Push, VkNotify, TelegramBot, MaxBot, Whatsapp, Viber],
    },
    EventInfo {
        event: Event::LinkClick,
        name: "link_click",
        description: "a click on a specific link of the message",
        channels: &[Email, Sms, Push, Viber, Whatsapp, TelegramBot, MaxBot, VkNotify],
    },
    EventInfo {
        event: Event::UnsubscribeClick,
        name: "unsubscribe_click",
        description: "a click on the unsubscribe link (never counted as click or link_click)",
        channels: &[Email, Sms, Push, VkNotify],
    },
    EventInfo {
        event: Event::UniqueClick,
        name: "unique_click",
        description: "at least one click in the message (one per message)",
        channels: &[TelegramBot, MaxBot, Whatsapp, Viber, VkNotify],
    },
    EventInfo {
        event: Event::UniqueLinkClick,
        name: "unique_link_click",
        description: "at least one click on a specific link (one per link and message)",
        channels: &[TelegramBot, MaxBot, Whatsapp, Viber, VkNotify],
    },
    EventInfo {
        event: Event::NonDelivery,
        name: "non_delivery",
        description: "the message could not be delivered",
        channels: &[TelegramBot, TelegramGroup, MaxBot, MaxGroup, Whatsapp, Viber, VkNotify],
    },
    EventInfo {
        event: Event::PolicyViolation,
        name: "policy_violation",
        description: "sending was stopped by a sending policy",
        channels: &[TelegramBot, TelegramGroup, MaxBot, MaxGroup, Whatsapp, VkNotify],
    },
    EventInfo {
        event: Event::HardBounce,
        name: "hard_bounce",
        description: "a permanent delivery error",
        channels: &[TelegramBot, MaxBot],
    },
    EventInfo {
        event: Event::Subscribed,
        name: "subscribed",
        description: "the profile subscribed to the channel",
        channels: &[TelegramBot, MaxBot, Whatsapp, Viber, VkNotify],
    },
    EventInfo {
        event: Event::Unsubscribed,
        name: "unsubscribed",
        description: "the profile unsubscribed from the channel",
        channels: &[TelegramBot, MaxBot, Whatsapp, Viber, VkNotify],
    },
    EventInfo {
        event: Event::SubscriptionConfirmed,
        name: "subscription_confirmed",
        description: "the subscription was confirmed (email: the Confirm link of double opt-in)",
        channels: &[Email, TelegramBot, MaxBot],
    },
];

impl Channel {
    /// The channel's name as written in scripts and stored in data.
    pub fn name(self) -> &'static str {
        match self {
            Email => "email",
            Sms => "sms",
            Push => "push",
            TelegramBot => "telegram_bot",
            TelegramGroup => "telegram_group",
            MaxBot => "max_bot",
            MaxGroup => "max_group",
            Whatsapp => "whatsapp",
            Viber => "viber",
            VkNotify => "vk_notify",
        }
    }

    /// Looks a channel up by its exact (lower-case) name.
    pub fn from_name(name: &str) -> Option<Channel> {
        CHANNELS.into_iter().find(|c| c.name() == name)
    }

    /// The events that exist in this channel, in catalog order.
    pub fn events(self) -> impl Iterator<Item = Event> {
        EVENTS
            .iter()
            .filter(move |info| info.channels.contains(&self))
            .map(|info| info.event)
    }
}

impl Event {
    /// The catalog row of this event.
    pub fn info(self) -> &'static EventInfo {
        // EVENTS is in declaration order of the enum, checked by a test.
        &EVENTS[self as usize]
    }

    /// The event's name as written in scripts and stored in data.
    pub fn name(self) -> &'static str {
        self.info().name
    }

    /// Looks an event up by its exact (lower-case) name.
    pub fn from_name(name: &str) -> Option<Event> {
        EVENTS.iter().find(|e| e.name == name).map(|e| e.event)
    }

    /// The channels where the event exists, in catalog order.
    pub fn channels(self) -> impl Iterator<Item = Channel> {
        CHANNELS
            .into_iter()
            .filter(move |c| self.info().channels.contains(c))
    }

    /// Whether the event exists in the channel.
    pub fn exists_in(self, channel: Channel) -> bool {
        self.info().channels.contains(&channel)
    }

    /// Events that record which link was clicked (the `link` clause applies).
    pub fn has_link(self) -> bool {
        matches!(self, Event::LinkClick | Event::UniqueLinkClick)
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Every event name, in catalog order.
pub fn event_names() -> impl Iterator<Item = &'static str> {
    EVENTS.iter().map(|e| e.name)
}

/// Every channel name, in catalog order.
pub fn channel_names() -> impl Iterator<Item = &'static str> {
    CHANNELS.into_iter().map(Channel::name)
}

/// The catalog as a Markdown document (kept equal to `docs/catalog.md` by a test).
pub fn to_markdown() -> String {
    let mut out = String::from(
        "# The catalog: channels and events\n\n\
         Generated from `src/catalog.rs` (a test keeps this file equal to it).\n\
         A condition `event.channel` is valid only where the table has a ✓;\n\
         `event.*` means every channel with a ✓ in the event's row.\n\n",
    );
    out.push_str("| event |");
    for c in CHANNELS {
        out.push_str(&format!(" {} |", c.name()));
    }
    out.push_str("\n|---|");
    for _ in CHANNELS {
        out.push_str(":-:|");
    }
    out.push('\n');
    for info in &EVENTS {
        out.push_str(&format!("| `{}` |", info.name));
        for c in CHANNELS {
            out.push_str(if info.channels.contains(&c) {
                " ✓ |"
            } else {
                "  |"
            });
        }
        out.push('\n');
    }
    out.push_str("\n## Events\n\n");
    for info in &EVENTS {
        let channels: Vec<&str> = info.event.channels().map(Channel::name).collect();
        out.push_str(&format!(
            "- `{}`: {}. Channels: {}.\n",
            info.name,
            info.description,
            channels.join(", ")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_table_is_in_enum_order() {
        for (i, info) in EVENTS.iter().enumerate() {
            assert_eq!(info.event as usize, i, "{} is out of order", info.name);
        }
    }

    #[test]
    fn names_round_trip() {
        for info in &EVENTS {
            assert_eq!(Event::from_name(info.name), Some(info.event));
        }
        for c in CHANNELS {
            assert_eq!(Channel::from_name(c.name()), Some(c));
        }
        assert_eq!(Event::from_name("Click"), None);
    }

    #[test]
    fn unsubscribe_click_is_not_a_link_event() {
        assert!(!Event::UnsubscribeClick.has_link());
        assert!(Event::LinkClick.has_link());
        assert!(Event::Read.exists_in(Whatsapp));
        assert!(!Event::Opened.exists_in(Whatsapp));
    }

    #[test]
    fn docs_catalog_md_matches_the_table() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/catalog.md");
        let on_disk = std::fs::read_to_string(path).unwrap_or_default();
        if std::env::var_os("SEG_BLESS").is_some() {
            std::fs::write(path, to_markdown()).expect("write docs/catalog.md");
            return;
        }
        assert_eq!(
            on_disk,
            to_markdown(),
            "docs/catalog.md is stale: run `SEG_BLESS=1 cargo test catalog` to regenerate it"
        );
    }
}
