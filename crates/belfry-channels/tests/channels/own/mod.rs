//! belfry's own channels against real things: an SMTP server (aiosmtpd) on loopback, the
//! recording HTTP receiver standing in for SendGrid, Twilio and the incident services, real child
//! processes for the command channel, real files.

mod chat;
mod command;
mod email;
mod file;
mod https;
mod incident;
mod irc;
mod mail_api;
mod mqtt;
mod relay;
mod services;
mod sms;
mod social;
mod support;
mod syslog;
mod xmpp;
