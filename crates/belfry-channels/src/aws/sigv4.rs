//! AWS Signature Version 4 (docs.aws.amazon.com, "Create a signed AWS API request"): a
//! canonical request, the string to sign, a signing key derived from the secret by date,
//! region and service, and the signature over the string, all SHA-256 and HMAC-SHA256.

use ring::{digest, hmac};

/// Who signs, and for which region and service.
pub(super) struct Signer<'a> {
    pub access_key: &'a str,
    pub secret: &'a str,
    pub region: &'a str,
    pub service: &'a str,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn sha256_hex(data: &[u8]) -> String {
    hex(digest::digest(&digest::SHA256, data).as_ref())
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data)
        .as_ref()
        .to_vec()
}

/// `YYYYMMDDTHHMMSSZ` of an RFC 3339 time in UTC (`2015-08-30T12:36:00.000Z`).
pub(super) fn amz_date(rfc3339: &str) -> String {
    let mut out: String = rfc3339
        .chars()
        .take_while(|c| *c != '.' && *c != 'Z')
        .filter(|c| *c != '-' && *c != ':')
        .collect();
    out.push('Z');
    out
}

impl Signer<'_> {
    /// The canonical request: method, path, query (already canonical: sorted and encoded),
    /// the headers (lowercase names, trimmed values, sorted), their names, the payload's hash.
    pub(super) fn canonical_request(
        method: &str,
        path: &str,
        query: &str,
        headers: &[(String, String)],
        payload: &[u8],
    ) -> (String, String) {
        let mut hs: Vec<(String, String)> = headers
            .iter()
            .map(|(k, v)| {
                let v = v.split_whitespace().collect::<Vec<_>>().join(" ");
                (k.to_ascii_lowercase(), v)
            })
            .collect();
        hs.sort();
        let canonical: String = hs.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
        let signed = hs
            .iter()
            .map(|(k, _)| k.as_str())
            .collect::<Vec<_>>()
            .join(";");
        (
            format!(
                "{method}\n{path}\n{query}\n{canonical}\n{signed}\n{}",
                sha256_hex(payload)
            ),
            signed,
        )
    }

    /// The `Authorization` header for a request whose canonical form is `creq`, signing
    /// `signed` headers, at `amz_date` (`YYYYMMDDTHHMMSSZ`).
    pub(super) fn authorization(&self, creq: &str, signed: &str, amz_date: &str) -> String {
        let date = amz_date.get(..8).unwrap_or(amz_date);
        let scope = format!("{date}/{}/{}/aws4_request", self.region, self.service);
        let to_sign = format!(
            "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
            sha256_hex(creq.as_bytes())
        );
        let k_date = hmac(format!("AWS4{}", self.secret).as_bytes(), date.as_bytes());
        let k_region = hmac(&k_date, self.region.as_bytes());
        let k_service = hmac(&k_region, self.service.as_bytes());
        let k_signing = hmac(&k_service, b"aws4_request");
        let signature = hex(&hmac(&k_signing, to_sign.as_bytes()));
        format!(
            "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed}, Signature={signature}",
            self.access_key
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

    fn h(k: &str, v: &str) -> (String, String) {
        (k.to_owned(), v.to_owned())
    }

    /// AWS's worked example in its Signature Version 4 documentation: IAM's ListUsers.
    #[test]
    fn the_documented_iam_example_signs_as_aws_says() {
        let (creq, signed) = Signer::canonical_request(
            "GET",
            "/",
            "Action=ListUsers&Version=2010-05-08",
            &[
                h(
                    "Content-Type",
                    "application/x-www-form-urlencoded; charset=utf-8",
                ),
                h("Host", "iam.amazonaws.com"),
                h("X-Amz-Date", "20150830T123600Z"),
            ],
            b"",
        );
        assert_eq!(signed, "content-type;host;x-amz-date");
        assert_eq!(
            sha256_hex(creq.as_bytes()),
            "f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59"
        );
        let signer = Signer {
            access_key: "AKIDEXAMPLE",
            secret: SECRET,
            region: "us-east-1",
            service: "iam",
        };
        assert_eq!(
            signer.authorization(&creq, &signed, "20150830T123600Z"),
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, \
             SignedHeaders=content-type;host;x-amz-date, \
             Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
        );
    }

    /// AWS's Signature Version 4 test suite, `get-vanilla`: the string to sign's hash.
    #[test]
    fn the_test_suites_get_vanilla_canonical_request_hashes_as_published() {
        let (creq, _) = Signer::canonical_request(
            "GET",
            "/",
            "",
            &[
                h("Host", "example.amazonaws.com"),
                h("X-Amz-Date", "20150830T123600Z"),
            ],
            b"",
        );
        assert_eq!(
            sha256_hex(creq.as_bytes()),
            "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63"
        );
    }

    #[test]
    fn rfc3339_times_become_amz_dates() {
        assert_eq!(amz_date("2015-08-30T12:36:00.000Z"), "20150830T123600Z");
        assert_eq!(amz_date("2026-12-04T19:55:56Z"), "20261204T195556Z");
    }
}
