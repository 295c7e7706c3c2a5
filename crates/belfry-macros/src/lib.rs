//! The `#[belfry::watch]` attribute. Use it through the `belfry` crate, which documents it
//! and holds the code it calls (`belfry::__private`).
//!
//! The attribute keeps the function's signature and wraps its body: in a closure run under
//! `catch_unwind` for a plain function, in an `async` block polled under `catch_unwind` for
//! an `async fn` (the block's output is fixed to the declared return type first, so that the
//! body is checked as it is without the attribute). Its options are checked here, at compile
//! time: a bad duration, an empty name or an unknown option is a compile error that points at
//! it. So is a return type whose syntax shows it is not a `Result` (none, a primitive, a
//! tuple, a reference); a named type may be an alias of `Result`, which only the compiler can
//! tell, so the generated code asks it (`belfry::__private::Outcome`, with a message of its
//! own).

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::{format_ident, quote, quote_spanned};
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Ident, ItemFn, LitStr, ReturnType, Token, Type};

/// Records each call of the function with belfry. See `belfry::watch` for the options.
#[proc_macro_attribute]
pub fn watch(attr: TokenStream, item: TokenStream) -> TokenStream {
    match expand(attr.into(), item.into()) {
        Ok(t) => t.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

/// The start of the error for a function that does not return a `Result`; the runtime's
/// `Outcome` trait says the same for a named type that turns out not to be one.
const NEEDS_RESULT: &str = "#[belfry::watch] needs a function that returns `Result<T, E>` (an \
                            `Ok` records OK, an `Err` records a failure) or a type alias of it";

const OPTIONS: &str = "name, repeat_failures_after, ok_heartbeat_after, channels, errors";

/// The options, as written.
#[derive(Default)]
struct Options {
    /// Where each option was written, for errors about its value as a whole.
    spans: Vec<(String, Span)>,
    name: Option<LitStr>,
    repeat_failures_after: Option<LitStr>,
    ok_heartbeat_after: Option<LitStr>,
    channels: Option<Vec<LitStr>>,
    errors: Option<Vec<Type>>,
}

impl Options {
    fn span_of(&self, key: &str) -> Span {
        self.spans
            .iter()
            .find(|(k, _)| k == key)
            .map_or_else(Span::call_site, |(_, s)| *s)
    }
}

impl Parse for Options {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let mut o = Options::default();
        let mut seen: Vec<String> = Vec::new();
        while !input.is_empty() {
            let key: Ident = input.call(Ident::parse_any).map_err(|e| {
                syn::Error::new(
                    e.span(),
                    format!("#[belfry::watch] takes `option = value` pairs: {OPTIONS}"),
                )
            })?;
            let name = key.unraw().to_string();
            if seen.contains(&name) {
                return Err(syn::Error::new(
                    key.span(),
                    format!("#[belfry::watch]: `{name}` is given twice"),
                ));
            }
            if !input.peek(Token![=]) {
                return Err(syn::Error::new(
                    key.span(),
                    format!("#[belfry::watch]: `{name}` needs a value: `{name} = …`"),
                ));
            }
            input.parse::<Token![=]>()?;
            match name.as_str() {
                "name" => o.name = Some(string(input, &name)?),
                "repeat_failures_after" => o.repeat_failures_after = Some(string(input, &name)?),
                "ok_heartbeat_after" => o.ok_heartbeat_after = Some(string(input, &name)?),
                "channels" => {
                    let content = list(input, &key, "channels = [\"ops\", \"pager\"]")?;
                    let list = Punctuated::<LitStr, Token![,]>::parse_terminated(&content)
                        .map_err(|e| {
                            syn::Error::new(
                                e.span(),
                                "#[belfry::watch]: `channels` is a list of channel names: \
                                 channels = [\"ops\", \"pager\"]",
                            )
                        })?;
                    o.channels = Some(list.into_iter().collect());
                }
                "errors" => {
                    let content = list(input, &key, "errors = [std::io::Error, MyError]")?;
                    let list =
                        Punctuated::<Type, Token![,]>::parse_terminated(&content).map_err(|e| {
                            syn::Error::new(
                                e.span(),
                                "#[belfry::watch]: `errors` is a list of error types: \
                                 errors = [std::io::Error, MyError]",
                            )
                        })?;
                    o.errors = Some(list.into_iter().collect());
                }
                other => {
                    return Err(syn::Error::new(
                        key.span(),
                        format!(
                            "#[belfry::watch]: unknown option `{other}`; the options are: \
                             {OPTIONS}"
                        ),
                    ));
                }
            }
            o.spans.push((name.clone(), key.span()));
            seen.push(name);
            if input.is_empty() {
                break;
            }
            input.parse::<Token![,]>()?;
        }
        Ok(o)
    }
}

/// The inside of `[…]`, or an error that shows how the list is written.
fn list<'a>(
    input: ParseStream<'a>,
    key: &Ident,
    example: &str,
) -> syn::Result<syn::parse::ParseBuffer<'a>> {
    if !input.peek(syn::token::Bracket) {
        return Err(syn::Error::new(
            input.span(),
            format!("#[belfry::watch]: `{key}` takes a list in brackets: {example}"),
        ));
    }
    let content;
    syn::bracketed!(content in input);
    Ok(content)
}

fn string(input: ParseStream<'_>, key: &str) -> syn::Result<LitStr> {
    input.parse::<LitStr>().map_err(|e| {
        syn::Error::new(
            e.span(),
            format!(
                "#[belfry::watch]: `{key}` takes a string, e.g. {key} = \"{}\"",
                example(key)
            ),
        )
    })
}

fn example(key: &str) -> &'static str {
    match key {
        "name" => "nightly-import",
        "ok_heartbeat_after" => "1h",
        _ => "10m",
    }
}

/// A checked duration as code: `Some(Duration)`, or for `ok_heartbeat_after`, `Some(None)`
/// when it is `"off"`.
fn duration_tokens(lit: &LitStr, may_be_off: bool) -> syn::Result<TokenStream2> {
    let text = lit.value();
    if may_be_off && text.trim() == "off" {
        return Ok(quote!(::core::option::Option::Some(
            ::core::option::Option::None
        )));
    }
    let d = belfry_core::parse_duration(&text).map_err(|e| {
        syn::Error::new(
            lit.span(),
            format!(
                "#[belfry::watch]: {e}{}",
                if may_be_off { ", or \"off\"" } else { "" }
            ),
        )
    })?;
    let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    let value = quote!(::core::time::Duration::from_millis(#ms));
    Ok(if may_be_off {
        quote!(::core::option::Option::Some(::core::option::Option::Some(#value)))
    } else {
        quote!(::core::option::Option::Some(#value))
    })
}

fn expand(attr: TokenStream2, item: TokenStream2) -> syn::Result<TokenStream2> {
    let opts: Options = syn::parse2(attr)?;
    let func: ItemFn = syn::parse2(item).map_err(|e| {
        syn::Error::new(
            e.span(),
            "#[belfry::watch] goes on a function with a body that returns Result<T, E>",
        )
    })?;
    let sig = &func.sig;
    if let Some(c) = &sig.constness {
        return Err(syn::Error::new(
            c.span(),
            "#[belfry::watch] cannot watch a `const fn`: it records each call at run time",
        ));
    }
    if let Some(v) = &sig.variadic {
        return Err(syn::Error::new(
            v.span(),
            "#[belfry::watch] cannot watch a variadic function",
        ));
    }
    let ret: &Type = match &sig.output {
        ReturnType::Type(_, ty) if may_be_result(ty) => ty,
        ReturnType::Type(_, ty) => {
            return Err(syn::Error::new(
                ty.span(),
                format!(
                    "{NEEDS_RESULT}; `{}` returns `{}`",
                    sig.ident,
                    type_text(ty)
                ),
            ));
        }
        ReturnType::Default => {
            return Err(syn::Error::new(
                sig.ident.span(),
                format!("{NEEDS_RESULT}; `{}` returns nothing", sig.ident),
            ));
        }
    };

    let job = match &opts.name {
        Some(lit) => {
            let name = lit.value();
            belfry_core::validate_job_name(&name).map_err(|e| {
                syn::Error::new(lit.span(), format!("#[belfry::watch]: `name`: {e}"))
            })?;
            quote!(#lit)
        }
        None => {
            let ident = sig.ident.unraw().to_string();
            quote!(::core::concat!(::core::module_path!(), "::", #ident))
        }
    };
    let repeat = match &opts.repeat_failures_after {
        Some(lit) => duration_tokens(lit, false)?,
        None => quote!(::core::option::Option::None),
    };
    let heartbeat = match &opts.ok_heartbeat_after {
        Some(lit) => duration_tokens(lit, true)?,
        None => quote!(::core::option::Option::None),
    };
    let channels = match &opts.channels {
        Some(list) => {
            let mut names: Vec<String> = Vec::new();
            for lit in list {
                let n = lit.value();
                if n.trim().is_empty() {
                    return Err(syn::Error::new(
                        lit.span(),
                        "#[belfry::watch]: a channel name cannot be empty",
                    ));
                }
                if names.contains(&n) {
                    return Err(syn::Error::new(
                        lit.span(),
                        format!("#[belfry::watch]: channel {n:?} is listed twice"),
                    ));
                }
                names.push(n);
            }
            if names.is_empty() {
                return Err(syn::Error::new(
                    opts.span_of("channels"),
                    "#[belfry::watch]: `channels = []` would send to no channel; leave it out \
                     to use the configured channels",
                ));
            }
            quote!(&[#(#list),*])
        }
        None => quote!(&[]),
    };
    let counted = match &opts.errors {
        Some(types) if types.is_empty() => {
            return Err(syn::Error::new(
                opts.span_of("errors"),
                "#[belfry::watch]: `errors = []` would count no error as a failure; leave it \
                 out to count every error",
            ));
        }
        Some(types) => {
            let checks = types.iter().map(|ty| {
                quote_spanned! {ty.span()=>
                    (&&&&::belfry::__private::Probe(__belfry_error)).belfry_is::<#ty>()
                }
            });
            quote! {{
                #[allow(unused_imports)]
                use ::belfry::__private::{
                    IsAny as _, IsBoxed as _, IsError as _, IsSendSyncBoxed as _,
                };
                false #(|| #checks)*
            }}
        }
        None => quote!(true),
    };

    let options = format_ident!("__BELFRY_WATCH");
    // Whether a named return type (an alias, say) is a `Result` is the compiler's to say; asking
    // through a trait bound makes its answer our message rather than a mismatched pattern.
    let split = quote_spanned!(ret.span()=> ::belfry::__private::outcome(&__belfry_result));
    let outcome = quote! {
        match #split {
            ::core::result::Result::Ok(_) => __belfry_call.ok(),
            ::core::result::Result::Err(__belfry_error) => {
                ::belfry::__private::check_describable(__belfry_error);
                if #counted {
                    #[allow(unused_imports)]
                    use ::belfry::__private::{
                        ViaAny as _, ViaBox as _, ViaDebug as _, ViaDisplay as _,
                        ViaError as _, ViaSendSyncBox as _,
                    };
                    __belfry_call.failed(
                        (&&&&&&::belfry::__private::Probe(__belfry_error)).belfry_describe(),
                    );
                } else {
                    __belfry_call.ok();
                }
            }
        }
    };
    let block = &func.block;
    let body = if sig.asyncness.is_some() {
        // An async block's output type is inferred from its body, where the function's is
        // declared: `Err(Box::new(e))` or `return Err(e.into())` would be checked without the
        // declared type and miss the coercions and conversions the function itself gets. A
        // `return` of the declared type that never runs, ahead of the body, fixes the output
        // type before the body is checked.
        quote! {
            match ::belfry::__private::CatchUnwind::new(async move {
                #[allow(unreachable_code, clippy::empty_loop)]
                if false {
                    let __belfry_declared: #ret = loop {};
                    return __belfry_declared;
                }
                #block
            })
            .await
            {
                ::core::result::Result::Ok(__belfry_result) => {
                    #outcome
                    __belfry_result
                }
                ::core::result::Result::Err(__belfry_panic) => {
                    __belfry_call.crashed(&*__belfry_panic);
                    ::belfry::__private::resume(__belfry_panic)
                }
            }
        }
    } else {
        quote! {
            match ::belfry::__private::run_sync::<#ret, _>(move || #block) {
                ::core::result::Result::Ok(__belfry_result) => {
                    #outcome
                    __belfry_result
                }
                ::core::result::Result::Err(__belfry_panic) => {
                    __belfry_call.crashed(&*__belfry_panic);
                    ::belfry::__private::resume(__belfry_panic)
                }
            }
        }
    };
    let outer = func
        .attrs
        .iter()
        .filter(|a| matches!(a.style, syn::AttrStyle::Outer));
    let inner = func
        .attrs
        .iter()
        .filter(|a| matches!(a.style, syn::AttrStyle::Inner(_)));
    let vis = &func.vis;
    Ok(quote! {
        #(#outer)*
        #vis #sig {
            #(#inner)*
            static #options: ::belfry::__private::JobOptions = ::belfry::__private::JobOptions {
                job: #job,
                repeat_failures_after: #repeat,
                ok_heartbeat_after: #heartbeat,
                channels: #channels,
            };
            let __belfry_call = ::belfry::__private::Call::start(&#options);
            #body
        }
    })
}

/// Whether a return type may be a `Result`, as far as its syntax tells. A named type may be
/// one whatever its name (`Result<T, E>`, `io::Result<T>`, an alias `Fallible<T>`), so the
/// compiler decides, through the runtime's `Outcome`; a primitive, a tuple, a reference or an
/// `impl Trait` cannot be, and is refused here with the function's name.
fn may_be_result(ty: &Type) -> bool {
    const PRIMITIVES: &[&str] = &[
        "bool", "char", "str", "u8", "u16", "u32", "u64", "u128", "usize", "i8", "i16", "i32",
        "i64", "i128", "isize", "f32", "f64",
    ];
    match ty {
        Type::Path(p) => !p
            .path
            .get_ident()
            .is_some_and(|i| p.qself.is_none() && PRIMITIVES.iter().any(|n| i == n)),
        Type::Macro(_) => true,
        Type::Paren(p) => may_be_result(&p.elem),
        Type::Group(g) => may_be_result(&g.elem),
        _ => false,
    }
}

/// A type as written, for a message: `Vec<u32>` and `&str` rather than the token stream's
/// `Vec < u32 >` and `& str`.
fn type_text(ty: &Type) -> String {
    let mut text = quote!(#ty).to_string();
    for (spaced, tight) in [
        (" :: ", "::"),
        (":: ", "::"),
        (" < ", "<"),
        ("< ", "<"),
        (" <", "<"),
        (" >", ">"),
        (" ,", ","),
        (" ;", ";"),
        ("& ", "&"),
        ("( ", "("),
        (" )", ")"),
        ("[ ", "["),
        (" ]", "]"),
    ] {
        text = text.replace(spaced, tight);
    }
    // `Fn (u8)` and `fn (u8)`: a parenthesis right after a name belongs to it (not after a
    // keyword: `&mut (u8, u8)`).
    let mut tidy = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == ' ' && chars.peek() == Some(&'(') {
            let word = tidy
                .rsplit(|p: char| !(p.is_alphanumeric() || p == '_'))
                .next()
                .unwrap_or("");
            if !word.is_empty() && !["mut", "dyn", "impl", "const"].contains(&word) {
                continue;
            }
        }
        tidy.push(c);
    }
    tidy
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ty(text: &str) -> Type {
        syn::parse_str(text).unwrap()
    }

    #[test]
    fn named_types_are_left_to_the_compiler_and_others_are_refused() {
        for named in [
            "Result<u32, E>",
            "std::io::Result<()>",
            "R<u32>",
            "Fallible",
            "Option<u8>",
        ] {
            assert!(may_be_result(&ty(named)), "{named}");
        }
        for other in [
            "u32",
            "()",
            "(u32, String)",
            "&str",
            "[u8; 4]",
            "impl Sized",
        ] {
            assert!(!may_be_result(&ty(other)), "{other}");
        }
    }

    #[test]
    fn types_in_messages_are_written_as_in_code() {
        for (written, shown) in [
            ("Vec<Vec<u8>>", "Vec<Vec<u8>>"),
            ("&'a str", "&'a str"),
            ("(u32, std::string::String)", "(u32, std::string::String)"),
            ("[u8; 4]", "[u8; 4]"),
            ("Box<dyn Fn(u8) -> u8>", "Box<dyn Fn(u8) -> u8>"),
            ("impl FnOnce() -> (u8, u8)", "impl FnOnce() -> (u8, u8)"),
            ("&mut (u8, u8)", "&mut (u8, u8)"),
        ] {
            assert_eq!(type_text(&ty(written)), shown);
        }
    }
}
