package logbody_test

// dict2SHA256 is the hash of dict2.s2dict as first committed.
const dict2SHA256 = "d2a3b084a6551a1050271c5bc86204e57a2d701e0fe82d03d832535ae8fac829"
