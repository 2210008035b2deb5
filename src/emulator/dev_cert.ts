/**
 * The emulator's development certificates, for its Service Fabric endpoint: a development
 * certificate authority (`CA:TRUE`, key usage `keyCertSign`) and the server certificate it
 * signed (`CA:FALSE`, extended key usage `serverAuth`, SAN `DNS:localhost`, `IP:127.0.0.1` and
 * `IP:::1`), both valid from 2026-01-01 to 2126-01-01, made once with `openssl` and committed
 * here. The emulator serves the server certificate with the authority as its chain; the
 * thumbprint a client pins (`IDENTITY_SERVER_THUMBPRINT`) is the server certificate's SHA-1,
 * {@linkcode DEV_CERTIFICATE_THUMBPRINT}. A client that trusts rather than pins (Deno's
 * `fetch` with `Deno.createHttpClient({ caCerts: [DEV_CA_CERTIFICATE] })`, `node:https` with
 * `ca`) trusts {@linkcode DEV_CA_CERTIFICATE}: rustls refuses a `CA:TRUE` certificate as a
 * server's (`CaUsedAsEndEntity`) even when trusted, hence two certificates rather than one.
 *
 * DEVELOPMENT ONLY. The server certificate's private key is public on purpose: these
 * certificates protect nothing and exist only so that the emulator can serve HTTPS on loopback
 * with a certificate a client can pin or trust. Never use the key, or trust the authority,
 * for anything else. The authority's private key was not kept and is not published, so nothing
 * else can be signed by it.
 * @module
 */

/** The development certificate authority (self-signed, `CA:TRUE`, PEM): trust it, for the emulator only. */
export const DEV_CA_CERTIFICATE = `-----BEGIN CERTIFICATE-----
MIIDIDCCAgigAwIBAgIRANJ7CUcC7/izr695xVMf/m0wDQYJKoZIhvcNAQELBQAw
JzElMCMGA1UEAwwcYXptaSBlbXVsYXRvciBkZXZlbG9wbWVudCBDQTAgFw0yNjAx
MDEwMDAwMDBaGA8yMTI2MDEwMTAwMDAwMFowJzElMCMGA1UEAwwcYXptaSBlbXVs
YXRvciBkZXZlbG9wbWVudCBDQTCCASIwDQYJKoZIhvcNAQEBBQADggEPADCCAQoC
ggEBAMCtDz6BqyT3BSFrasntVLbvgvK9KBdmOzRxhdRnJlkJHnM9xiHjKFuwb/pu
GGULVikQdjvgu02nlzY0CVrnIviScJ1y+58cqb5B4XqEJzij6qsrx9rW0XUwwLJz
UYI59QzFv8VdTqlSfFxWUX+HJCrNof3JxiR0131q3nBN+1K0e4zAaLlGgX+RCygn
NYqismB/0R4HStBrWXi9RAEuaNaSkBx/HAAuA3KEage633/7UANtTS142Sj4dSu2
9QBFaEtBzIHqxiz89CTRNRiUVc/XLabBHoj5bvC3hElhvsWddDDqMm9deNDmW0mG
EEo9qVpUQKRxbcwZiUtZAgVXQwcCAwEAAaNFMEMwEgYDVR0TAQH/BAgwBgEB/wIB
ADAOBgNVHQ8BAf8EBAMCAQYwHQYDVR0OBBYEFCcCXVOfQGNZtdvgKpjIQENNNmQ5
MA0GCSqGSIb3DQEBCwUAA4IBAQCop35XGtlBD1eu2lNZAnwdDZYqL4ADZ485wrCW
0t7gHheYv4HmHhC39bMY01VM+FGoY50ceytbIhk660ZCxQnDmfHY+MLXJPNUEwXN
wJq9TQ4+3KuNrali1itoXsryTM+xUxOwYjb0zdnDBDarDQ5LXcbKnCmIdn+0hVap
RimYEeUAsBPHt/bDlawNeg/7rfHBE0wOad6EhdWPPmxvj6NJACk1Mbj5EU7nZY6f
5JTDZaZhPq7j60cBgAfYsVP5+7qvRH8ZzAgzZOS8zlvuZLCWiV+j9usRiQbH1+bP
FBYjALaB0XlZ4XaI9ezsfkKsi0jF7XYLFEpjsOg9FBety4oo
-----END CERTIFICATE-----
`;

/**
 * The Service Fabric endpoint's server certificate, PEM: `CN=azmi emulator development
 * certificate`, `CA:FALSE`, `serverAuth`, SAN `localhost`, `127.0.0.1` and `::1`, signed by
 * {@linkcode DEV_CA_CERTIFICATE}.
 */
export const DEV_CERTIFICATE = `-----BEGIN CERTIFICATE-----
MIIDiDCCAnCgAwIBAgIQI08+859oERMO+bz73TjjfTANBgkqhkiG9w0BAQsFADAn
MSUwIwYDVQQDDBxhem1pIGVtdWxhdG9yIGRldmVsb3BtZW50IENBMCAXDTI2MDEw
MTAwMDAwMFoYDzIxMjYwMTAxMDAwMDAwWjAwMS4wLAYDVQQDDCVhem1pIGVtdWxh
dG9yIGRldmVsb3BtZW50IGNlcnRpZmljYXRlMIIBIjANBgkqhkiG9w0BAQEFAAOC
AQ8AMIIBCgKCAQEAuXT7+d2iIocvIrWed/GVZxYH2FnR1vIP/sHuj8z9xPqeyIzj
RfU/9Da5P65HFhgX2CkufW+tvFlFoSzu/f3tnIymB5ceB8ZiIgaWRhjPKALq8mxe
w/maGnsC9q/oxo+3DpGwEOEOWWORLRY83ur0WQhXDWCbazJFsqp4m3Tzv16MTBlu
aPmWIM/USD4KsMX4fS/9zDcmJ/dNfnjLUR3tSD/drGZJW5CeOH4uW9RNjNwNqY4K
AfnZQpRZ5bSobKopuVTlRCRW/UmW/6kyQLO11Lb+M8OxE5GrikgwLmH2IPULqekv
/ByQDfIw/pV3RnbEJvhmLF4CSS4nLs6ZplyIkQIDAQABo4GkMIGhMAwGA1UdEwEB
/wQCMAAwDgYDVR0PAQH/BAQDAgWgMBMGA1UdJQQMMAoGCCsGAQUFBwMBMCwGA1Ud
EQQlMCOCCWxvY2FsaG9zdIcEfwAAAYcQAAAAAAAAAAAAAAAAAAAAATAdBgNVHQ4E
FgQU9JCe0Li03ilTLIZLGHi2Nj6a3I4wHwYDVR0jBBgwFoAUJwJdU59AY1m12+Aq
mMhAQ002ZDkwDQYJKoZIhvcNAQELBQADggEBAKinq1Gy0DXd6WB3r49n/a01nftn
8tu9LvZDKtqExgcm6yn+FvWIXWZCy4dJcBXm3oUzI3PUQmUMujdxg5Vm9pqTc1XU
oiwENUEYAd4NneSWuHMEW/pSiY42LgHhLDWoXIt+mWAf4ryRhHTbC9DrA7VA2NJL
M1sqlR5u0uBTo9H2S0+Q1JsvAK6RpYr6BkLr5W4FzhnxYAY/uJia3UJ6dmW9KlAe
OZePqCERAE1A0Ro+MZMhYa0fX6mvhYljdwV24kd+0VauOUwcnBGWd6jVyMJxBU1a
qMQqToXOuqZFEDbwYBSdiBz1aADbDPWpFMQpes4nOUBHGdRrJlP+chUwUYU=
-----END CERTIFICATE-----
`;

/**
 * The server certificate's SHA-1 thumbprint (upper-case hex): what `IDENTITY_SERVER_THUMBPRINT`
 * pins. tests/emulator_test.ts checks it against {@linkcode DEV_CERTIFICATE}.
 */
export const DEV_CERTIFICATE_THUMBPRINT = "9B765EBD524777EF0B3DAF630C3B61E669DE4254";

/** The server certificate's private key, PEM. Development only: public on purpose, never use it elsewhere. */
export const DEV_PRIVATE_KEY = `-----BEGIN PRIVATE KEY-----
MIIEvAIBADANBgkqhkiG9w0BAQEFAASCBKYwggSiAgEAAoIBAQC5dPv53aIihy8i
tZ538ZVnFgfYWdHW8g/+we6PzP3E+p7IjONF9T/0Nrk/rkcWGBfYKS59b628WUWh
LO79/e2cjKYHlx4HxmIiBpZGGM8oAurybF7D+ZoaewL2r+jGj7cOkbAQ4Q5ZY5Et
Fjze6vRZCFcNYJtrMkWyqnibdPO/XoxMGW5o+ZYgz9RIPgqwxfh9L/3MNyYn901+
eMtRHe1IP92sZklbkJ44fi5b1E2M3A2pjgoB+dlClFnltKhsqim5VOVEJFb9SZb/
qTJAs7XUtv4zw7ETkauKSDAuYfYg9Qup6S/8HJAN8jD+lXdGdsQm+GYsXgJJLicu
zpmmXIiRAgMBAAECggEAESxTW53kXPd7q+Z5gs3XcdueZQWxjV/jj0mnV6A515Ba
57ieyw7yGcvUzPV3FlqrdT7K/p6QI0149HspXlJckGSNyKImYRNDvwwxGiiYoNyJ
o7fZRqMfBq4MEN/VLvMxQPjIqad4IVrmSfCHOR/fTzybIwf7xv9kE4P+9cDsrp8K
+5174HhF2IMQHqSRNn+RUjR9QfcEuTZoIuk1Ty8uIVoNp9eDbNESEbBpf0BAwrAF
VPOdnadDBXsmfTqhLf/NvtqQY02zABg57RYTUslB1SkozPaCAbCMOvB+o9lm1B5P
8IARhfAXYhjhRnnbrwYKZqn1EjMQFKtGoJkCcuP0CQKBgQDjqZ+jNVKkBtaidPHB
WaLnCcD9RwK64MmlkkUQ8j6gAW/RkcXEXUHwiXuUe5LqwXoJzc0xhkpDu4qXdSQG
FvRwfNtMVUhDrCIR4ceQKngTBl3Fji+8WuLIc88cTijv8MbAE8hmqa31Pa11yejM
uuPNnx7qbP6sS2v+Opupqc2akwKBgQDQin7gk686gx0UnlBtNT6UZjlWsmoMRSl+
PuHMLwsPuNBe0SZNLynbUpts7BPTqsF9j2N7mM/eVWwwm6homcgDl791Md9Ew+Yp
hbW+n4DDaR8fImpLKXWiAW9PCAO0CMLWHLj08JwbjQQo/tQAwpC8yxqKyVmr45NH
+nxSR3zyywKBgFErOvVvn4VHwuKtGzy6frAs9BfZZ4nFd1+G5QUDuXxGxt1LQd2e
+lGOUvc/j8QPMzmnnI8ZuASqKuGRLETXjlNE0NNIXLlz97m0a/hki+cMkAZNiYt4
Q/7/+0m2PDY//DyjUQH5YUJcuSmT0WKdB3daUiV2st4vDdPYhYNaPSntAoGAB6sw
Iz4LEZHEvf9cYce1d2uS7Dc/YxggAH57ezC3rWpUb0gtqmTzmxcclBLSX9RFrUJa
nC7wZfKqOddfiAkvq8Imzj55QWQa0KgUGOBwsb7p4BE5622o375Bw5w91p8D2y/P
NWKruu+imYdVcHm3LNojLbtdys5hmiIB9FygoaUCgYB8y0JmeWx4ESxiZk2V04XY
rH2tW1zZu4JUCudjmO77jS7Yc1bxyVHSxgUeBjKLHb3a+1+NzXGPXmVTnX1yS/wh
l+ciNMvJoMaEd2myNbbVsIaAC7hildOouyw31eyJDPqZWVhhRETyVb5XY1Qwlt82
+o/8aQpeVNtItzNMOnGtzw==
-----END PRIVATE KEY-----
`;
