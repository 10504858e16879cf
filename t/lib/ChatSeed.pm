package ChatSeed;

# Users as a sign-in leaves them, made straight in the stores (the OTP
# flow for thousands takes too long): a document, a session in MongoDB
# and in Redis, an empty set of chat ids, and an access token.  Their
# profiles are not cached: a socket's first sign-in reads the document.

use strict;
use warnings;

use ChatMongo;
use ChatJWT;
use IO::Socket::INET;
use JSON::PP ();
use Time::HiRes ();

my $seeded = 0;

# Redis commands, pipelined on one connection: the replies' first lines
sub redis_pipe {
    my @cmds = @_;
    my $r = IO::Socket::INET->new("127.0.0.1:$ENV{TEST_NGINX_REDIS_PORT}")
        or die "redis: $!";
    my $out = "";
    for my $c (@cmds) {
        $out .= "*" . @$c . "\r\n"
                . join "", map { "\$" . length($_) . "\r\n$_\r\n" } @$c;
    }
    print $r $out;
    my @lines;
    for (@cmds) {
        my $line = <$r>;
        die "redis: no reply" unless defined $line;
        push @lines, $line;
    }
    close $r;
    return @lines;
}

# $n users: [{id, phone, token}]
sub users {
    my ($n) = @_;
    my $mongo = ChatMongo->new(port => $ENV{TEST_NGINX_MONGO_PORT});
    my $now = int(Time::HiRes::time() * 1000);
    my (@users, @sessions, @redis, @out);
    for my $i ($seeded + 1 .. $seeded + $n) {
        my $uid = sprintf "%08x%08x%08x", time, $$ & 0xffff, $i;
        my $sid = sprintf "%08x%08x%08x", time, ($$ & 0xffff) + 1, $i;
        my $phone = sprintf("+1999%04d%05d", $$ % 10000, $i);
        push @users, [ _id => ChatMongo::oid($uid),
            phone => $phone,
            createdAt => ChatMongo::date($now),
            updatedAt => ChatMongo::date($now) ];
        push @sessions, [ _id => ChatMongo::oid($sid),
            userId => ChatMongo::oid($uid), device => "test",
            ip => "127.0.0.1", createdAt => ChatMongo::date($now),
            lastUsedAt => ChatMongo::date($now), revoked => JSON::PP::false() ];
        push @redis, [ HSET => "sess:{$sid}", uid => $uid, cur => "test" ],
                     [ EXPIRE => "sess:{$sid}", 3600 ],
                     [ HSET => "uh:{$uid}", "", "", "g", "0" ],
                     [ EXPIRE => "uh:{$uid}", 3600 ];
        push @out, { id => $uid, phone => $phone, token => ChatJWT::hs256(
            "test-secret-0123456789abcdef0123456789", undef,
            { sub => $uid, sid => $sid, iat => time, exp => time + 3600,
              jti => sprintf("%032x", $i), iss => "ngx_chat_module",
              aud => "chat", typ => "access" }) };
    }
    $seeded += $n;
    $mongo->insert(users => \@users);
    $mongo->insert(sessions => \@sessions);
    redis_pipe(@redis);
    return @out;
}

1;
