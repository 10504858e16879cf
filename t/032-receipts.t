# Receipts: read and delivered markers (forward only, clamped to the
# chat's last seq), unread counts that follow the read marker, message
# receipts with a status for the sender, read receipts turned off, and
# bad inputs.

use Test::Nginx::Socket 'no_plan';
use ChatTest;
use ChatChats;
use JSON::PP;

BEGIN { ChatChats::init("560") }

*Id = \%ChatChats::Id;
our (%Id, %Chat, %Msg, $Got);

sub send_text {
    my ($who, $chat, $temp, $text) = @_;
    return ChatChats::api($who => POST => "/api/messages",
        { chatId => $chat, tempId => $temp, type => "text", content => $text })->{message};
}

# "userId:d:r" per receipt (d, r: the time is there), and the status
sub receipts {
    my ($who, $msg) = @_;
    my $b = ChatChats::api($who => GET => "/api/messages/$msg/receipts");
    my %name = reverse %main::Id;
    return join(" ", $b->{status}, map {
        $name{$_->{userId}} . ":" . ($_->{deliveredAt} ? "d" : "-") . ($_->{readAt} ? "r" : "-")
    } @{ $b->{receipts} });
}

no_shuffle();
run_tests();

__DATA__

=== TEST 1: a group, three messages from alice: nobody got them yet
--- init
ChatChats::setup();
$main::Chat{g} = ChatChats::api(alice => POST => "/api/chats/group",
    { name => "receipts", memberIds => [ $main::Id{bob}, $main::Id{carol} ] })->{chat}{id};
$main::Msg{$_} = main::send_text(alice => $main::Chat{g}, "r$_", "message $_") for 1 .. 3;
my $m = $main::Msg{1}{id};
ChatChats::dyn($block, as => "alice", request => "GET /api/messages/$m/receipts",
    response_body_like => qr/^\{"messageId":"$m","seq":1,"status":"sent","receipts":\[\{"userId":"$main::Id{bob}"\},\{"userId":"$main::Id{carol}"\}\]\}$/);
--- error_code: 200



=== TEST 2: bob got up to 2: the markers come back; carol read past the end: clamped to 3
--- init
my $b = ChatChats::api(bob => POST => "/api/chats/$main::Chat{g}/delivered", { upToSeq => 2 });
my $c = ChatChats::api(carol => POST => "/api/chats/$main::Chat{g}/read", { upToSeq => 99 });
$main::Got = join " ", $b->{deliveredSeq}, $b->{readSeq}, ($b->{deliveredAt} ? "at" : "no-at"), ($b->{readAt} ? "read-at" : "no-read-at"),
    $c->{deliveredSeq}, $c->{readSeq}, ($c->{readAt} =~ /^\d{4}-\d\d-\d\dT/ ? "at" : "no-at"),
    main::receipts(alice => $main::Msg{1}{id}), "|", main::receipts(alice => $main::Msg{3}{id});
ChatChats::dyn($block, as => "alice", request => "GET /api/chats");
--- response_body_filters eval
sub { "$main::Got\n" }
--- response_body
2 0 at no-read-at 3 3 at delivered bob:d- carol:dr | sent bob:-- carol:dr
--- error_code: 200



=== TEST 3: bob reads 1: message 1 is read by all, 2 delivered to all, 3 sent
--- init
ChatChats::api(bob => POST => "/api/chats/$main::Chat{g}/read", { upToSeq => 1 });
$main::Got = join " | ", map { main::receipts(alice => $main::Msg{$_}{id}) } 1 .. 3;
ChatChats::dyn($block, as => "bob", request => "GET /api/chats");
--- response_body_filters eval
sub { "$main::Got\n" }
--- response_body
read bob:dr carol:dr | delivered bob:d- carol:dr | sent bob:-- carol:dr
--- error_code: 200



=== TEST 4: markers never go back; 0 moves nothing
--- init
ChatChats::dyn($block, as => "bob", request => [
    "POST /api/chats/$main::Chat{g}/read\n{\"upToSeq\":0}",
    "POST /api/chats/$main::Chat{g}/delivered\n{\"upToSeq\":1}",
    "POST /api/chats/$main::Chat{g}/read\n{\"upToSeq\":1}" ],
    error_code => [200, 200, 200],
    response_body_like => [ qr/^\{"readSeq":1,"deliveredSeq":2,"readAt":"[^"]+","deliveredAt":"[^"]+"\}$/,
                            qr/"readSeq":1,"deliveredSeq":2,/, qr/"readSeq":1,"deliveredSeq":2,/ ]);



=== TEST 5: unread counts follow the read marker: bob 2, carol 0, alice (the sender) 0
--- init
$main::Got = join " ", map {
    my $who = $_;
    my ($c) = grep { $_->{id} eq $main::Chat{g} } @{ ChatChats::api($who => GET => "/api/chats")->{items} };
    "$who=$c->{unreadCount}"
} qw(alice bob carol);
ChatChats::api(bob => POST => "/api/chats/$main::Chat{g}/read", { upToSeq => 3 });
my ($c) = grep { $_->{id} eq $main::Chat{g} } @{ ChatChats::api(bob => GET => "/api/chats")->{items} };
$main::Got .= " then bob=$c->{unreadCount}";
ChatChats::dyn($block, as => "bob", request => "GET /api/chats");
--- response_body_filters eval
sub { "$main::Got\n" }
--- response_body
alice=0 bob=2 carol=0 then bob=0
--- error_code: 200



=== TEST 6: carol turns read receipts off: she counts as delivered only
--- init
ChatChats::api(carol => PUT => "/api/users/profile", { privacy => { readReceipts => "nobody" } });
$main::Got = join " | ", map { main::receipts(alice => $main::Msg{$_}{id}) } 1, 3;
ChatChats::api(carol => PUT => "/api/users/profile", { privacy => { readReceipts => "everyone" } });
$main::Got .= " | " . main::receipts(bob => $main::Msg{3}{id});
ChatChats::dyn($block, as => "alice", request => "GET /api/chats");
--- response_body_filters eval
sub { "$main::Got\n" }
--- response_body
delivered bob:dr carol:d- | delivered bob:dr carol:d- | read bob:dr carol:dr
--- error_code: 200



=== TEST 7: a private chat: bob's own message is reported for alice only
--- init
$main::Chat{ab} = ChatChats::api(alice => POST => "/api/chats/private", { userId => $main::Id{bob} })->{chat}{id};
$main::Msg{p} = main::send_text(bob => $main::Chat{ab}, "p1", "hi");
$main::Got = main::receipts(bob => $main::Msg{p}{id});
ChatChats::api(alice => POST => "/api/chats/$main::Chat{ab}/read", { upToSeq => 1 });
$main::Got .= " | " . main::receipts(bob => $main::Msg{p}{id});
ChatChats::dyn($block, as => "bob", request => "GET /api/chats");
--- response_body_filters eval
sub { "$main::Got\n" }
--- response_body
sent alice:-- | read alice:dr
--- error_code: 200



=== TEST 8: bad inputs of read and delivered
--- init
my $g = $main::Chat{g};
my @cases = (
    [ "read", {}, 400, qr/upToSeq is required/ ],
    [ "read", { upToSeq => undef }, 400, qr/upToSeq is required/ ],
    [ "read", { upToSeq => "2" }, 400, qr/upToSeq must be an integer/ ],
    [ "read", { upToSeq => 1.5 }, 400, qr/upToSeq must be an integer/ ],
    [ "read", { upToSeq => JSON::PP::true }, 400, qr/upToSeq must be an integer/ ],
    [ "read", { upToSeq => [1] }, 400, qr/upToSeq must be an integer/ ],
    [ "read", { upToSeq => { '$gt' => "" } }, 400, qr/upToSeq must be an integer/ ],
    [ "delivered", { upToSeq => -1 }, 400, qr/upToSeq must be a number, 0 or more/ ],
    [ "delivered", { upToSeq => 1e300 }, 400, qr/upToSeq must be an integer/ ],
    [ "delivered", { upToSeq => "1" x 30 }, 400, qr/upToSeq must be an integer/ ],
    [ "delivered", { upToSeq => 1, unknown => { '$gt' => "" } }, 200, qr/"deliveredSeq":3/ ],
);
ChatChats::dyn($block, as => "bob",
    request => [ map { "POST /api/chats/$g/$_->[0]\n" . JSON::PP::encode_json($_->[1]) } @cases ],
    error_code => [ map { $_->[2] } @cases ],
    response_body_like => [ map { $_->[3] } @cases ]);



=== TEST 9: overlong numbers, bad and unknown chat ids, non-members: 400 or 404
--- init
my $g = $main::Chat{g};
ChatChats::dyn($block, as => "carol", request => [
    "POST /api/chats/$g/read\n{\"upToSeq\":123456789012345678901234567890}",
    "POST /api/chats/zz/read\n{\"upToSeq\":1}",
    "POST /api/chats/%7B%22%24gt%22%3A%22%22%7D/read\n{\"upToSeq\":1}",
    "POST /api/chats/0123456789abcdef01234567/read\n{\"upToSeq\":1}",
    "POST /api/chats/0123456789abcdef01234567/delivered\n{\"upToSeq\":1}",
    "POST /api/chats/$main::Chat{ab}/read\n{\"upToSeq\":1}",
    "POST /api/chats/$main::Chat{ab}/delivered\n{\"upToSeq\":1}",
    "POST /api/chats/$g/read\n[1]",
    "GET /api/chats/$g/read" ],
    error_code => [400, 404, 404, 404, 404, 404, 404, 400, 405]);



=== TEST 10: receipts of a message: bad ids, unknown, and a non-member get 404
--- init
ChatChats::dyn($block, as => "carol", request => [
    "GET /api/messages/$main::Msg{p}{id}/receipts",
    "GET /api/messages/zz/receipts",
    "GET /api/messages/%7B%22%24gt%22%3A%22%22%7D/receipts",
    "GET /api/messages/0123456789abcdef01234567/receipts",
    "GET /api/messages/$main::Chat{g}/receipts",
    "POST /api/messages/$main::Msg{1}{id}/receipts" ],
    error_code => [404, 404, 404, 404, 404, 405]);
