# My chat settings: mute until a time or forever, unmute, archive, pin;
# shown in my chats only to me; bad inputs.

use Test::Nginx::Socket 'no_plan';
use ChatTest;
use ChatChats;
use JSON::PP;
use POSIX ();

BEGIN { ChatChats::init("562") }

*Id = \%ChatChats::Id;
our (%Id, %Chat, $Got);

sub iso { POSIX::strftime("%Y-%m-%dT%H:%M:%SZ", gmtime($_[0])) }

sub settings_of {
    my ($who, $chat) = @_;
    my ($c) = grep { $_->{id} eq $chat } @{ ChatChats::api($who => GET => "/api/chats")->{items} };
    my $s = $c->{settings};
    return join ":", ($s->{muted} ? "muted" : "unmuted"), ($s->{mutedUntil} // "-"),
        ($s->{archived} ? "archived" : "-"), ($s->{pinned} ? "pinned" : "-");
}

no_shuffle();
run_tests();

__DATA__

=== TEST 1: defaults; mute for a while, then forever, then unmute; archive and pin; the other member's stay
--- init
ChatChats::setup();
$main::Chat{ab} = ChatChats::api(alice => POST => "/api/chats/private", { userId => $main::Id{bob} })->{chat}{id};
my $c = $main::Chat{ab};
my $until = main::iso(time + 3600);
my @got = (main::settings_of(alice => $c));
my $b = ChatChats::api(alice => PUT => "/api/chats/$c/settings", { mutedUntil => $until });
push @got, ($b->{settings}{mutedUntil} eq ($until =~ s/Z$/.000Z/r) ? "until-ok" : "until: $b->{settings}{mutedUntil}");
push @got, main::settings_of(alice => $c) =~ s/\d{4}-[^:]*:\d\d:\d\d\.\d{3}Z/T/r;
ChatChats::api(alice => PUT => "/api/chats/$c/settings", { muted => JSON::PP::true, pinned => JSON::PP::true });
push @got, main::settings_of(alice => $c);
ChatChats::api(alice => PUT => "/api/chats/$c/settings", { archived => JSON::PP::true, unknown => { '$set' => 1 } });
push @got, main::settings_of(alice => $c);
ChatChats::api(alice => PUT => "/api/chats/$c/settings", { muted => JSON::PP::false, pinned => JSON::PP::false });
push @got, main::settings_of(alice => $c), main::settings_of(bob => $c);
$main::Got = join " ", @got;
ChatChats::dyn($block, as => "alice", request => "PUT /api/chats/$c/settings\n{\"archived\":false}");
--- response_body_filters eval
sub { ($_[0] =~ s/\n$//r) . " $main::Got\n" }
--- response_body eval
'{"settings":{"muted":false,"archived":false,"pinned":false}} unmuted:-:-:- until-ok muted:T:-:- muted:-:-:pinned muted:-:archived:pinned unmuted:-:archived:- unmuted:-:-:-' . "\n"
--- error_code: 200



=== TEST 2: a mute that has run out is no mute
--- init
my $c = $main::Chat{ab};
ChatChats::api(bob => PUT => "/api/chats/$c/settings", { mutedUntil => main::iso(time + 2) });
my $before = main::settings_of(bob => $c) =~ s/\d{4}-[^:]*:\d\d:\d\d\.\d{3}Z/T/r;
sleep 3;
$main::Got = "$before " . main::settings_of(bob => $c);
ChatChats::dyn($block, as => "bob", request => "GET /api/chats");
--- response_body_filters eval
sub { "$main::Got\n" }
--- response_body
muted:T:-:- unmuted:-:-:-
--- error_code: 200



=== TEST 3: bad inputs of settings
--- init
my $c = $main::Chat{ab};
my @cases = (
    [ $c, {}, 400, qr/settings need/ ],
    [ $c, { muted => "true" }, 400, qr/muted must be a boolean/ ],
    [ $c, { muted => 1 }, 400, qr/muted must be a boolean/ ],
    [ $c, { archived => { '$gt' => "" } }, 400, qr/archived must be a boolean/ ],
    [ $c, { pinned => [ JSON::PP::true ] }, 400, qr/pinned must be a boolean/ ],
    [ $c, { mutedUntil => 123 }, 400, qr/mutedUntil must be a string/ ],
    [ $c, { mutedUntil => { '$gt' => "" } }, 400, qr/mutedUntil must be a string/ ],
    [ $c, { mutedUntil => "tomorrow" }, 400, qr/mutedUntil must be a UTC time/ ],
    [ $c, { mutedUntil => "2030-02-30T00:00:00Z" }, 400, qr/mutedUntil must be a UTC time/ ],
    [ $c, { mutedUntil => "2030-01-01T25:00:00Z" }, 400, qr/mutedUntil must be a UTC time/ ],
    [ $c, { mutedUntil => "2030-01-01T00:00:00+01:00" }, 400, qr/mutedUntil/ ],
    [ $c, { mutedUntil => "2030-01-01T00:00:00.5Z" }, 400, qr/mutedUntil must be a UTC time/ ],
    [ $c, { mutedUntil => "2020-01-01T00:00:00Z" }, 400, qr/mutedUntil must be in the next 10 years/ ],
    [ $c, { mutedUntil => "2999-01-01T00:00:00Z" }, 400, qr/mutedUntil must be in the next 10 years/ ],
    [ $c, { mutedUntil => "x" x 1000 }, 400, qr/mutedUntil is too long/ ],
    [ $c, { muted => JSON::PP::true, mutedUntil => main::iso(time + 60) }, 400, qr/mutedUntil must not come with muted/ ],
    [ "zz", { muted => JSON::PP::true }, 404, qr/not_found/ ],
    [ "0123456789abcdef01234567", { muted => JSON::PP::true }, 404, qr/not_found/ ],
    [ $c, { mutedUntil => main::iso(time + 60) =~ s/Z$/.250Z/r }, 200, qr/"muted":true,"mutedUntil":"[^"]+\.250Z"/ ],
);
ChatChats::dyn($block, as => "alice",
    request => [ map { "PUT /api/chats/$_->[0]/settings\n" . JSON::PP::encode_json($_->[1]) } @cases ],
    error_code => [ map { $_->[2] } @cases ],
    response_body_like => [ map { $_->[3] } @cases ]);



=== TEST 4: a non-member: 404; not a JSON body: 400
--- init
my $c = $main::Chat{ab};
ChatChats::dyn($block, as => "carol", request => [
    "PUT /api/chats/$c/settings\n{\"muted\":true}",
    "PUT /api/chats/$c/settings\n[1]",
    "GET /api/chats/$c/settings" ],
    error_code => [404, 400, 405]);
