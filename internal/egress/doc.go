// Package egress holds the rules recledger's outgoing requests share when
// they go to addresses that came from outside (webhook destinations, NATS
// servers, the storage URLs of RC's uploads): which addresses may be
// dialled at all (Public, DialControl), and how long a server may ask
// them to wait (ParseRetryAfter).
package egress
