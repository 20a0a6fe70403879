package logbody_test

// dict1SHA256 is the hash of dict1.zdict as first committed.
const dict1SHA256 = "3dab181185bd4868d532b964706c61f4db269f2e9c0760550e0a76abbde0c357"
