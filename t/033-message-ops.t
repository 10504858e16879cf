# Operations on messages: edit (sender only, text only, within
# chat_edit_window, history kept), and bad inputs.

use Test::Nginx::Socket 'no_plan';
use ChatTest;
use ChatChats;
use JSON::PP;

# a backlog of 230 messages of one user, sent at once: no send budget,
# which is not tested here
BEGIN { ChatChats::init("561", "chat_edit_window 3s;\n    chat_delete_window 3s;\n    chat_send_rate off;") }

*Id = \%ChatChats::Id;
our (%Id, %Chat, %Msg, $Got);

sub send_msg {
    my ($who, $chat, $temp, $type, $content) = @_;
    return ChatChats::api($who => POST => "/api/messages",
        { chatId => $chat, tempId => $temp, type => $type, content => $content })->{message};
}

no_shuffle();
run_tests();

__DATA__

=== TEST 1: alice edits her text twice: edited, editedAt, and the history
--- init
ChatChats::setup();
$main::Chat{g} = ChatChats::api(alice => POST => "/api/chats/group",
    { name => "ops", memberIds => [ $main::Id{bob} ] })->{chat}{id};
$main::Msg{t} = main::send_msg(alice => $main::Chat{g}, "e1", text => "first");
$main::Msg{loc} = main::send_msg(alice => $main::Chat{g}, "e2", location => { lat => 1, lng => 2 });
$main::Msg{b} = main::send_msg(bob => $main::Chat{g}, "e3", text => "bob's");
my $e1 = ChatChats::api(alice => PUT => "/api/messages/$main::Msg{t}{id}", { content => "second" })->{message};
my $e2 = ChatChats::api(alice => PUT => "/api/messages/$main::Msg{t}{id}", { content => "third \x{1F600}", edited => JSON::PP::false })->{message};
$main::Got = join " ", "$e1->{content}{type}:$e1->{content}{text}", ($e1->{edited} ? "edited" : "not-edited"), scalar(@{ $e1->{edits} }),
    $e2->{content}{text} eq "third \x{1F600}" ? "utf8-ok" : "utf8-bad", $e2->{seq},
    join(",", map { "$_->{content}{type}:$_->{content}{text}" } @{ $e2->{edits} }),
    ($e2->{edits}[0]{editedAt} eq $main::Msg{t}{createdAt} ? "t0-ok" : "t0-bad"),
    ($e2->{edits}[1]{editedAt} eq $e1->{editedAt} ? "t1-ok" : "t1-bad"),
    ($e2->{editedAt} =~ /^\d{4}-/ ? "at-ok" : "at-bad");
my $id = $main::Msg{t}{id};
ChatChats::dyn($block, as => "bob", request => "GET /api/messages/$id",
    response_body_like => qr/"content":\{"type":"text","text":"third \x{1F600}"\}.*"edited":true.*"edits":\[\{"content":\{"type":"text","text":"first"\}/);
--- response_body_filters eval
sub { my $b = Encode::decode_utf8($_[0]); ($b =~ /"edits":\[\{"content":\{"type":"text","text":"first"\},"editedAt":"[^"]+"\},\{"content":\{"type":"text","text":"second"\}/ ? "history-ok" : $b) . " $main::Got\n" }
--- response_body
history-ok text:second edited 1 utf8-ok 1 text:first,text:second t0-ok t1-ok at-ok
--- error_code: 200



=== TEST 2: in the list: edited and the new content, without the history
--- init
ChatChats::dyn($block, as => "bob", request => "GET /api/chats/$main::Chat{g}/messages?after=0&limit=1");
--- response_body_like: ^\{"items":\[\{"id":"[0-9a-f]{24}","chatId":"[0-9a-f]{24}","seq":1,"senderId":"[0-9a-f]{24}","tempId":"e1","type":"text","content":\{"type":"text","text":"third [^"]+"\},"createdAt":"[^"]+","edited":true,"editedAt":"[^"]+"\}\]\}$
--- error_code: 200



=== TEST 3: someone else's message 403, not text 422, a non-member 404
--- init
my $g = $main::Chat{g};
ChatChats::dyn($block, as => "bob", request => [
    "PUT /api/messages/$main::Msg{t}{id}\n{\"content\":\"mine now\"}",
    "PUT /api/messages/$main::Msg{b}{id}\n{\"content\":\"fixed\"}" ],
    error_code => [403, 200],
    response_body_like => [ qr/^\{"error":\{"code":"forbidden"/, qr/"content":\{"type":"text","text":"fixed"\}/ ]);
my ($s1, $b1) = ChatChats::call(alice => PUT => "/api/messages/$main::Msg{loc}{id}", { content => "x" });
my ($s2, $b2) = ChatChats::call(carol => PUT => "/api/messages/$main::Msg{t}{id}", { content => "x" });
$main::Got = "$s1 $b1->{error}{code} $s2 $b2->{error}{code}";
--- response_body_filters eval
sub { "$main::Got\n" }
--- response_body eval
["422 not_text 404 not_found\n", "422 not_text 404 not_found\n"]



=== TEST 4: after chat_edit_window: 422 edit_window_passed
--- init
sleep 4;
ChatChats::dyn($block, as => "alice", request => "PUT /api/messages/$main::Msg{t}{id}\n{\"content\":\"too late\"}");
--- response_body_like: ^\{"error":\{"code":"edit_window_passed"
--- error_code: 422



=== TEST 5: bad inputs of edit
--- init
my $m = main::send_msg(alice => $main::Chat{g}, "e4", text => "to edit");
my @cases = (
    [ $m->{id}, {}, 400, qr/content is required/ ],
    [ $m->{id}, { content => undef }, 400, qr/content is required/ ],
    [ $m->{id}, { content => "" }, 400, qr/content must be 1 to 4096/ ],
    [ $m->{id}, { content => "x" x 4097 }, 400, qr/content must be 1 to 4096/ ],
    [ $m->{id}, { content => "a\x{07}b" }, 400, qr/control/ ],
    [ $m->{id}, { content => 5 }, 400, qr/content must be a string/ ],
    [ $m->{id}, { content => { '$gt' => "" } }, 400, qr/content must be a string/ ],
    [ $m->{id}, { content => [ "x" ] }, 400, qr/content must be a string/ ],
    [ "zz", { content => "x" }, 404, qr/not_found/ ],
    [ "0123456789abcdef01234567", { content => "x" }, 404, qr/not_found/ ],
    [ $main::Chat{g}, { content => "x" }, 404, qr/not_found/ ],
    [ $m->{id}, { content => "x" x 4096, '$set' => { senderId => "x" } }, 200, qr/"edited":true/ ],
);
ChatChats::dyn($block, as => "alice",
    request => [ map { "PUT /api/messages/$_->[0]\n" . JSON::PP::encode_json($_->[1]) } @cases ],
    error_code => [ map { $_->[2] } @cases ],
    response_body_like => [ map { $_->[3] } @cases ]);



=== TEST 6: malformed bodies and invalid UTF-8
--- init
ChatChats::dyn($block, as => "alice", request => [
    "PUT /api/messages/$main::Msg{t}{id}\n{\"content\":\"\xff\xfe\"}",
    "PUT /api/messages/$main::Msg{t}{id}\n[1]",
    "PUT /api/messages/$main::Msg{t}{id}\n{\"content\":\"a\\u0000b\"}" ],
    error_code => [400, 400, 400],
    response_body_like => [ qr/invalid_json/, qr/invalid_json/, qr/invalid_json/ ]);



=== TEST 7: delete for me: gone from my reads (get, list, last message), not from others'; again is fine
--- init
$main::Chat{d} = ChatChats::api(alice => POST => "/api/chats/group",
    { name => "deletes", memberIds => [ $main::Id{bob} ] })->{chat}{id};
$main::Msg{"d$_"} = main::send_msg($_ <= 2 ? "bob" : "alice", $main::Chat{d}, "d$_", text => "delete me $_") for 1 .. 4;
my @r = map { my ($s, $b) = ChatChats::call(bob => DELETE => "/api/messages/$main::Msg{$_}{id}"); "$s:" . ($b->{success} ? "ok" : "bad") } qw(d1 d1 d4);
my ($s) = ChatChats::call(bob => GET => "/api/messages/$main::Msg{d1}{id}");
my $mine = join ",", map { $_->{seq} } @{ ChatChats::api(bob => GET => "/api/chats/$main::Chat{d}/messages")->{items} };
my $theirs = join ",", map { $_->{seq} } @{ ChatChats::api(alice => GET => "/api/chats/$main::Chat{d}/messages")->{items} };
my ($c) = grep { $_->{id} eq $main::Chat{d} } @{ ChatChats::api(bob => GET => "/api/chats")->{items} };
my ($ca) = grep { $_->{id} eq $main::Chat{d} } @{ ChatChats::api(alice => GET => "/api/chats")->{items} };
$main::Got = join " ", @r, "get=$s", "mine=$mine", "theirs=$theirs",
    "last=$c->{lastMessage}{seq}", "unread=$c->{unreadCount}", "alice-last=$ca->{lastMessage}{seq}";
ChatChats::dyn($block, as => "bob", request => "GET /api/chats");
--- response_body_filters eval
sub { "$main::Got\n" }
--- response_body
200:ok 200:ok 200:ok get=404 mine=3,2 theirs=4,3,2,1 last=3 unread=1 alice-last=4
--- error_code: 200



=== TEST 8: delete for everyone: bob may not delete alice's; alice (an admin) deletes bob's; a tombstone at the same seq
--- init
my ($s1, $b1) = ChatChats::call(bob => DELETE => "/api/messages/$main::Msg{d3}{id}?forEveryone=true");
my ($s2, $b2) = ChatChats::call(alice => DELETE => "/api/messages/$main::Msg{d2}{id}?forEveryone=true");
my ($s3, $b3) = ChatChats::call(alice => DELETE => "/api/messages/$main::Msg{d2}{id}?forEveryone=true");
my ($s4, $b4) = ChatChats::call(alice => DELETE => "/api/messages/$main::Msg{d3}{id}?forEveryone=false");
my $m = $b2->{message};
$main::Got = join " ", "$s1:$b1->{error}{code}", $s2, $m->{type}, $m->{seq}, (exists $m->{content} ? "content" : "no-content"),
    ($m->{deletedBy} eq $main::Id{alice} ? "by-alice" : "by-other"), ($m->{deletedAt} ? "at" : "no-at"),
    $s3, ($b3->{message}{deletedAt} eq $m->{deletedAt} ? "same" : "other"), $s4;
my $seqs = join ",", map { "$_->{seq}:$_->{type}" } @{ ChatChats::api(bob => GET => "/api/chats/$main::Chat{d}/messages?after=0")->{items} };
$main::Got .= " $seqs";
my ($s5, $b5) = ChatChats::call(bob => PUT => "/api/messages/$main::Msg{d2}{id}", { content => "back" });
$main::Got .= " edit=$s5:$b5->{error}{code}";
ChatChats::dyn($block, as => "bob", request => "GET /api/messages/$main::Msg{d2}{id}",
    response_body_like => qr/^\{"message":\{"id":"$main::Msg{d2}{id}","chatId":"[0-9a-f]{24}","seq":2,"senderId":"$main::Id{bob}","tempId":"d2","type":"deleted","createdAt":"[^"]+","deletedAt":"[^"]+","deletedBy":"$main::Id{alice}","reactions":\[\]\}\}$/);
--- response_body_filters eval
sub { ($_[0] =~ /"type":"deleted"/ ? "get-ok" : $_[0]) . " $main::Got\n" }
--- response_body
get-ok 403:forbidden 200 deleted 2 no-content by-alice at 200 same 200 2:deleted,3:text edit=422:not_text
--- error_code: 200



=== TEST 9: the sender deletes their own for everyone; in a private chat the other may not
--- init
$main::Chat{ab} = ChatChats::api(alice => POST => "/api/chats/private", { userId => $main::Id{bob} })->{chat}{id};
my $p = main::send_msg(bob => $main::Chat{ab}, "p1", text => "private");
my ($s1, $b1) = ChatChats::call(alice => DELETE => "/api/messages/$p->{id}?forEveryone=true");
my ($s2, $b2) = ChatChats::call(bob => DELETE => "/api/messages/$p->{id}?forEveryone=true");
my ($s3) = ChatChats::call(carol => DELETE => "/api/messages/$p->{id}?forEveryone=true");
my ($s4) = ChatChats::call(carol => DELETE => "/api/messages/$p->{id}");
$main::Got = "$s1:$b1->{error}{code} $s2:$b2->{message}{type}:$b2->{message}{deletedBy} $s3 $s4";
ChatChats::dyn($block, as => "bob", request => "GET /api/chats");
--- response_body_filters eval
sub { my $b = $main::Id{bob}; $main::Got =~ s/$b/bob/r . "\n" }
--- response_body
403:forbidden 200:deleted:bob 404 404
--- error_code: 200



=== TEST 10: after chat_delete_window: 422 for everyone, still fine for me
--- init
my $m = main::send_msg(alice => $main::Chat{d}, "late", text => "late");
sleep 4;
my ($s1, $b1) = ChatChats::call(alice => DELETE => "/api/messages/$m->{id}?forEveryone=true");
my ($s2) = ChatChats::call(alice => DELETE => "/api/messages/$m->{id}");
$main::Got = "$s1:$b1->{error}{code} $s2";
ChatChats::dyn($block, as => "alice", request => "GET /api/chats");
--- response_body_filters eval
sub { "$main::Got\n" }
--- response_body
422:delete_window_passed 200
--- error_code: 200



=== TEST 11: bad inputs of delete
--- init
my $id = $main::Msg{d3}{id};
ChatChats::dyn($block, as => "bob", request => [
    "DELETE /api/messages/$id?forEveryone=yes",
    "DELETE /api/messages/$id?forEveryone=1",
    "DELETE /api/messages/$id?forEveryone=",
    "DELETE /api/messages/$id?forEveryone=%7B%22%24gt%22%3A%22%22%7D",
    "DELETE /api/messages/zz",
    "DELETE /api/messages/0123456789abcdef01234567?forEveryone=true",
    "DELETE /api/messages/$main::Chat{d}",
    "DELETE /api/messages/" . ("a" x 300) ],
    error_code => [400, 400, 400, 400, 404, 404, 404, 404],
    response_body_like => [ qr/forEveryone must be true or false/, qr/forEveryone/, qr/forEveryone/, qr/forEveryone/,
                            qr/not_found/, qr/not_found/, qr/not_found/, qr/not_found/ ]);



=== TEST 12: reactions: one per user; another emoji replaces it; the same again removes it; a summary in GET
--- init
$main::Chat{r} = ChatChats::api(alice => POST => "/api/chats/group",
    { name => "reacts", memberIds => [ $main::Id{bob}, $main::Id{carol} ] })->{chat}{id};
my $m = main::send_msg(alice => $main::Chat{r}, "r1", text => "react to me");
$main::Msg{r} = $m;
my $sum = sub { join ",", map { "$_->{emoji}$_->{count}" . ($_->{mine} ? "m" : "") } @{ $_[0]{message}{reactions} } };
my @got;
push @got, $sum->(ChatChats::api(bob => POST => "/api/messages/$m->{id}/react", { emoji => "\x{1F44D}" }));
push @got, $sum->(ChatChats::api(carol => POST => "/api/messages/$m->{id}/react", { emoji => "\x{1F44D}\x{1F3FD}" }));
push @got, $sum->(ChatChats::api(alice => POST => "/api/messages/$m->{id}/react", { emoji => "\x{1F44D}" }));
push @got, $sum->(ChatChats::api(bob => POST => "/api/messages/$m->{id}/react", { emoji => "\x{2764}\x{FE0F}" }));
push @got, $sum->(ChatChats::api(alice => POST => "/api/messages/$m->{id}/react", { emoji => "\x{1F44D}" }));
push @got, $sum->(ChatChats::api(carol => GET => "/api/messages/$m->{id}"));
push @got, $sum->(ChatChats::api(alice => GET => "/api/messages/$m->{id}"));
$main::Got = join " ", @got;
ChatChats::dyn($block, as => "alice", request => "GET /api/chats");
--- response_body_filters eval
sub { Encode::encode_utf8("$main::Got\n") }
--- response_body eval
Encode::encode_utf8("\x{1F44D}1m \x{1F44D}1,\x{1F44D}\x{1F3FD}1m \x{1F44D}2m,\x{1F44D}\x{1F3FD}1 \x{1F44D}\x{1F3FD}1,\x{1F44D}1,\x{2764}\x{FE0F}1m \x{1F44D}\x{1F3FD}1,\x{2764}\x{FE0F}1 \x{1F44D}\x{1F3FD}1m,\x{2764}\x{FE0F}1 \x{1F44D}\x{1F3FD}1,\x{2764}\x{FE0F}1\n")
--- error_code: 200



=== TEST 13: two reactions of one user at once: one reaction stays
--- init
my $m = $main::Msg{r};
my @pids;
for my $e ("\x{1F600}", "\x{1F601}") {
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        my ($s) = ChatChats::call(bob => POST => "/api/messages/$m->{id}/react", { emoji => $e });
        POSIX::_exit($s == 200 ? 0 : 1);
    }
    push @pids, $pid;
}
my $fails = 0;
for (@pids) { waitpid($_, 0); $fails++ if $? }
my $r = ChatChats::api(bob => GET => "/api/messages/$m->{id}")->{message}{reactions};
$main::Got = "fails=$fails mine=" . scalar(grep { $_->{mine} } @$r);
ChatChats::dyn($block, as => "bob", request => "GET /api/chats");
--- response_body_filters eval
sub { "$main::Got\n" }
--- response_body
fails=0 mine=1
--- error_code: 200



=== TEST 14: bad emoji and bad inputs of react
--- init
my $id = $main::Msg{r}{id};
my @cases = (
    [ $id, {}, 400, qr/emoji is required/ ],
    [ $id, { emoji => "" }, 400, qr/emoji must not be empty/ ],
    [ $id, { emoji => 1 }, 400, qr/emoji must be a string/ ],
    [ $id, { emoji => { '$gt' => "" } }, 400, qr/emoji must be a string/ ],
    [ $id, { emoji => [ "\x{1F44D}" ] }, 400, qr/emoji must be a string/ ],
    [ $id, { emoji => "\x{1F44D}" x 40 }, 400, qr/emoji is too long/ ],
    [ $id, { emoji => "\x{1F44D}" x 9 }, 422, qr/invalid_emoji/ ],
    [ $id, { emoji => "a" }, 422, qr/invalid_emoji/ ],
    [ $id, { emoji => "\x{1F44D}a" }, 422, qr/invalid_emoji/ ],
    [ $id, { emoji => "1\x{FE0F}\x{20E3}" }, 422, qr/invalid_emoji/ ],
    [ $id, { emoji => "\x{200D}\x{FE0F}" }, 422, qr/invalid_emoji/ ],
    [ $id, { emoji => "\x{E9}" }, 422, qr/invalid_emoji/ ],
    [ $id, { emoji => "\x{4E2D}" }, 422, qr/invalid_emoji/ ],
    [ $id, { emoji => " \x{1F44D}" }, 422, qr/invalid_emoji/ ],
    [ "zz", { emoji => "\x{1F44D}" }, 404, qr/not_found/ ],
    [ "0123456789abcdef01234567", { emoji => "\x{1F44D}" }, 404, qr/not_found/ ],
    [ $main::Chat{r}, { emoji => "\x{1F44D}" }, 404, qr/not_found/ ],
    [ $main::Msg{d2}{id}, { emoji => "\x{1F44D}" }, 422, qr/message_deleted/ ],
    [ $main::Msg{d1}{id}, { emoji => "\x{1F44D}" }, 404, qr/not_found/ ],
    [ $main::Msg{t}{id}, { emoji => "\x{1F468}\x{200D}\x{1F469}\x{200D}\x{1F467}" }, 200, qr/"reactions":\[\{"emoji"/ ],
    [ $main::Msg{t}{id}, { emoji => "\x{1F1EB}\x{1F1F7}" }, 200, qr/"count":1/ ],
);
ChatChats::dyn($block, as => "bob",
    request => [ map { "POST /api/messages/$_->[0]/react\n" . JSON::PP::encode_json($_->[1]) } @cases ],
    error_code => [ map { $_->[2] } @cases ],
    response_body_like => [ map { $_->[3] } @cases ]);



=== TEST 15: a non-member cannot react or see reactions: 404
--- init
ChatChats::dyn($block, as => "carol", request => [
    "POST /api/messages/$main::Msg{t}{id}/react\n{\"emoji\":\"\xf0\x9f\x91\x8d\"}",
    "GET /api/messages/$main::Msg{t}{id}" ],
    error_code => [404, 404]);



=== TEST 16: forward to two chats: new messages with forwardedFrom and their own seqs; a retry gives the same copies
--- init
my $src = $main::Msg{t};
my $before = ChatChats::api(alice => GET => "/api/chats/$main::Chat{r}/messages?limit=1")->{items}[0]{seq};
my $b1 = ChatChats::api(alice => POST => "/api/messages/$src->{id}/forward", { chatIds => [ $main::Chat{r}, $main::Chat{ab} ] });
my $b2 = ChatChats::api(alice => POST => "/api/messages/$src->{id}/forward", { chatIds => [ $main::Chat{r}, $main::Chat{ab} ] });
my ($m1, $m2) = @{ $b1->{messages} };
my $loc = ChatChats::api(bob => POST => "/api/messages/$main::Msg{loc}{id}/forward", { chatIds => [ $main::Chat{r} ] })->{messages}[0];
$main::Got = join " ", scalar(@{ $b1->{messages} }),
    ($m1->{chatId} eq $main::Chat{r} ? "r" : "x"), ($m2->{chatId} eq $main::Chat{ab} ? "ab" : "x"),
    $m1->{seq} - $before, $m1->{type}, ($m1->{content}{type} eq "text" && $m1->{content}{text} eq "third \x{1F600}" ? "content-ok" : "content-bad"),
    ($m1->{forwardedFrom}{messageId} eq $src->{id} ? "from-ok" : "from-bad"),
    ($m1->{forwardedFrom}{chatId} eq $main::Chat{g} ? "chat-ok" : "chat-bad"),
    ($m1->{senderId} eq $main::Id{alice} ? "sender-ok" : "sender-bad"),
    ($m1->{id} ne $src->{id} ? "new" : "same-as-source"),
    (join(",", map { $_->{id} } @{ $b2->{messages} }) eq "$m1->{id},$m2->{id}" ? "retry-same" : "retry-new"),
    $loc->{type}, "$loc->{content}{type}:$loc->{content}{latitude},$loc->{content}{longitude}", $loc->{seq} - $before, ($loc->{senderId} eq $main::Id{bob} ? "bob" : "x");
my $id = $m1->{id};
ChatChats::dyn($block, as => "carol", request => "GET /api/messages/$id",
    response_body_like => qr/"forwardedFrom":\{"messageId":"$src->{id}","chatId":"$main::Chat{g}"\}/);
--- response_body_filters eval
sub { "$main::Got\n" }
--- response_body
2 r ab 1 text content-ok from-ok chat-ok sender-ok new retry-same location location:1,2 2 bob
--- error_code: 200



=== TEST 17: forward into a private chat across a block: 403; a chat of which I am not a member, a deleted or hidden source: 404
--- init
ChatChats::api(bob => POST => "/api/users/$main::Id{alice}/block");
my ($s1, $b1) = ChatChats::call(alice => POST => "/api/messages/$main::Msg{r}{id}/forward", { chatIds => [ $main::Chat{r}, $main::Chat{ab} ] });
ChatChats::api(bob => DELETE => "/api/users/$main::Id{alice}/block");
my ($s2) = ChatChats::call(carol => POST => "/api/messages/$main::Msg{r}{id}/forward", { chatIds => [ $main::Chat{r}, $main::Chat{g} ] });
my ($s3) = ChatChats::call(carol => POST => "/api/messages/$main::Msg{t}{id}/forward", { chatIds => [ $main::Chat{r} ] });
my ($s4) = ChatChats::call(bob => POST => "/api/messages/$main::Msg{d2}{id}/forward", { chatIds => [ $main::Chat{r} ] });
my ($s5) = ChatChats::call(bob => POST => "/api/messages/$main::Msg{d1}{id}/forward", { chatIds => [ $main::Chat{r} ] });
my ($s6) = ChatChats::call(carol => POST => "/api/messages/$main::Msg{r}{id}/forward", { chatIds => [ "0123456789abcdef01234567" ] });
my $n = scalar @{ ChatChats::api(carol => GET => "/api/chats/$main::Chat{r}/messages?limit=100")->{items} };
my ($s7, $b7) = ChatChats::call(carol => POST => "/api/messages/$main::Msg{r}{id}/forward", { chatIds => [ $main::Chat{r} ] });
my $n2 = scalar @{ ChatChats::api(carol => GET => "/api/chats/$main::Chat{r}/messages?limit=100")->{items} };
$main::Got = "$s1:$b1->{error}{code} $s2 $s3 $s4 $s5 $s6 $s7 " . ($n2 - $n);
ChatChats::dyn($block, as => "carol", request => "GET /api/chats");
--- response_body_filters eval
sub { "$main::Got\n" }
--- response_body
403:blocked 404 404 404 404 404 201 1
--- error_code: 200



=== TEST 18: bad inputs of forward
--- init
my $id = $main::Msg{r}{id};
my $r = $main::Chat{r};
my @cases = (
    [ $id, {}, 400, qr/chatIds is required/ ],
    [ $id, { chatIds => undef }, 400, qr/chatIds is required/ ],
    [ $id, { chatIds => $r }, 400, qr/chatIds must be an array/ ],
    [ $id, { chatIds => { '$gt' => "" } }, 400, qr/chatIds must be an array/ ],
    [ $id, { chatIds => [] }, 400, qr/chatIds must hold 1 to 10/ ],
    [ $id, { chatIds => [ map { sprintf "%024x", $_ } 1 .. 11 ] }, 400, qr/chatIds must hold 1 to 10/ ],
    [ $id, { chatIds => [ $r, $r ] }, 400, qr/twice/ ],
    [ $id, { chatIds => [ 1 ] }, 400, qr/as strings/ ],
    [ $id, { chatIds => [ { '$gt' => "" } ] }, 400, qr/as strings/ ],
    [ $id, { chatIds => [ "123" ] }, 400, qr/24 hexadecimal/ ],
    [ $id, { chatIds => [ "z" x 24 ] }, 400, qr/24 hexadecimal/ ],
    [ $id, { chatIds => [ "a" x 5000 ] }, 400, qr/24 hexadecimal/ ],
    [ "zz", { chatIds => [ $r ] }, 404, qr/not_found/ ],
    [ "0123456789abcdef01234567", { chatIds => [ $r ] }, 404, qr/not_found/ ],
    [ $r, { chatIds => [ $r ] }, 404, qr/not_found/ ],
);
ChatChats::dyn($block, as => "carol",
    request => [ map { "POST /api/messages/$_->[0]/forward\n" . JSON::PP::encode_json($_->[1]) } @cases ],
    error_code => [ map { $_->[2] } @cases ],
    response_body_like => [ map { $_->[3] } @cases ]);



=== TEST 19: search in a chat: case-insensitive substrings of text, newest first, paged; metacharacters are literal
--- init
$main::Chat{s} = ChatChats::api(alice => POST => "/api/chats/group",
    { name => "search", memberIds => [ $main::Id{bob} ] })->{chat}{id};
my @texts = ("Hello World", "hello again", "say HELLO", "nothing here", "a.b*c(d)?", "a-b-c", "\x{DC}n\x{EF}c\x{F6}d\x{E9} \x{C9}T\x{C9}", "\x{E9}t\x{E9}", "hello deleted", "hello hidden");
my %m;
$m{$_} = main::send_msg(alice => $main::Chat{s}, "s$_", text => $texts[$_]) for 0 .. $#texts;
main::send_msg(alice => $main::Chat{s}, "sloc", location => { lat => 1, lng => 1, name => "hello place" });
ChatChats::api(alice => DELETE => "/api/messages/$m{8}{id}?forEveryone=true");
ChatChats::api(bob => DELETE => "/api/messages/$m{9}{id}");
my $q = sub {
    my ($who, $query) = @_;
    my $b = ChatChats::api($who => GET => "/api/chats/$main::Chat{s}/messages/search?$query");
    (join(",", map { $_->{seq} } @{ $b->{items} }) || "<empty>") . ($b->{nextCursor} ? ">$b->{nextCursor}" : "");
};
my @got = (
    $q->(bob => "q=hello"), $q->(alice => "q=hello"), $q->(bob => "q=HeLLo+w"), $q->(bob => "q=a.b*c(d)%3F"),
    $q->(bob => "q=*c("), $q->(bob => "q=a.b"), $q->(bob => "q=%C3%A9t%C3%A9"), $q->(bob => "q=%C3%BCn%C3%AF"),
    $q->(bob => "q=hello&limit=2"), $q->(bob => "q=hello&limit=2&before=2"), $q->(bob => "q=hello&limit=2&cursor=3"),
    $q->(bob => "q=nomatch"), $q->(bob => "q=%5B"),
);
$main::Got = join " ", @got;
my $first = $m{0}{id};
ChatChats::dyn($block, as => "bob", request => "GET /api/chats/$main::Chat{s}/messages/search?q=world",
    response_body_like => qr/^\{"items":\[\{"id":"$first",[^\[\]]*"content":\{"type":"text","text":"Hello World"\}[^\[\]]*\}\]\}$/);
--- response_body_filters eval
sub { "$main::Got\n" }
--- response_body
3,2,1 10,3,2,1 1 5 5 5 8,7 7 3,2>2 1 2,1 <empty> <empty>
--- error_code: 200



=== TEST 20: search across my chats, newest first with a cursor; not in chats I am not in
--- init
my $q = sub {
    my ($who, $query) = @_;
    my $b = ChatChats::api($who => GET => "/api/messages/search?$query");
    return $b;
};
my $all = $q->(bob => "q=hello&limit=50");
my @ids = map { $_->{id} } @{ $all->{items} };
my (@paged, $cursor);
for (1 .. 10) {
    my $p = $q->(bob => "q=hello&limit=2" . ($cursor ? "&cursor=$cursor" : ""));
    push @paged, map { $_->{id} } @{ $p->{items} };
    last unless $cursor = $p->{nextCursor};
}
my $chats = join ",", sort keys %{ { map { $_->{chatId} => 1 } @{ $all->{items} } } };
my $carol = $q->(carol => "q=hello&limit=50");
my %mine = map { $_ => 1 } ($main::Chat{s}, $main::Chat{r});
$main::Got = join " ", scalar(@ids), ("@paged" eq "@ids" ? "paged-ok" : "paged: @paged vs @ids"),
    ($all->{items}[0]{content}{text} eq "say HELLO" ? "newest-ok" : "newest: $all->{items}[0]{content}{text}"),
    (scalar(grep { !$mine{$_->{chatId}} && $_->{chatId} ne $main::Chat{g} && $_->{chatId} ne $main::Chat{ab} && $_->{chatId} ne $main::Chat{d} } @{ $all->{items} }) ? "leak" : "only-mine"),
    "carol=" . scalar(grep { $_->{chatId} eq $main::Chat{s} } @{ $carol->{items} }),
    "carol-chat=" . (ChatChats::call(carol => GET => "/api/chats/$main::Chat{s}/messages/search?q=hello"))[0];
ChatChats::dyn($block, as => "bob", request => "GET /api/chats");
--- response_body_filters eval
sub { "$main::Got\n" }
--- response_body
3 paged-ok newest-ok only-mine carol=0 carol-chat=404
--- error_code: 200



=== TEST 21: bad inputs of search
--- init
my $s = $main::Chat{s};
my @cases = (
    [ "/api/chats/$s/messages/search", 400, qr/q is required/ ],
    [ "/api/chats/$s/messages/search?q=", 400, qr/q is required/ ],
    [ "/api/chats/$s/messages/search?q=" . ("a" x 101), 400, qr/q must be 1 to 100/ ],
    [ "/api/chats/$s/messages/search?q=%FF", 400, qr/q must be/ ],
    [ "/api/chats/$s/messages/search?q=a%00b", 400, qr/q must be/ ],
    [ "/api/chats/$s/messages/search?q=a%0Ab", 400, qr/q must be/ ],
    [ "/api/chats/$s/messages/search?q=a&limit=0", 400, qr/limit/ ],
    [ "/api/chats/$s/messages/search?q=a&limit=51", 400, qr/limit/ ],
    [ "/api/chats/$s/messages/search?q=a&before=x", 400, qr/before/ ],
    [ "/api/chats/$s/messages/search?q=a&before=0", 400, qr/before/ ],
    [ "/api/chats/$s/messages/search?q=%7B%22%24gt%22%3A%22%22%7D", 200, qr/^\{"items":\[\]\}$/ ],
    [ "/api/chats/zz/messages/search?q=a", 404, qr/not_found/ ],
    [ "/api/chats/0123456789abcdef01234567/messages/search?q=a", 404, qr/not_found/ ],
    [ "/api/messages/search", 400, qr/q is required/ ],
    [ "/api/messages/search?q=a&cursor=x", 400, qr/cursor/ ],
    [ "/api/messages/search?q=a&cursor=1.zz", 400, qr/cursor/ ],
    [ "/api/messages/search?q=a&limit=x", 400, qr/limit/ ],
    [ "/api/messages/search?q=%5C", 200, qr/^\{"items":\[\]\}$/ ],
);
ChatChats::dyn($block, as => "bob",
    request => [ map { "GET $_->[0]" } @cases ],
    error_code => [ map { $_->[1] } @cases ],
    response_body_like => [ map { $_->[2] } @cases ]);



=== TEST 22: a long chat's last message and unread count: by numbers near its last, and past a window of messages deleted for me
--- init
ChatChats::setup();
my $g = ChatChats::api(alice => POST => "/api/chats/group",
    { name => "long", memberIds => [ $ChatChats::Id{bob} ] })->{chat}{id};
my @ids;
for my $i (1 .. 80) {
    push @ids, ChatChats::api(bob => POST => "/api/messages",
        { chatId => $g, tempId => "long-$i", type => "text", content => "m$i" })->{message}{id};
}
my $seen = sub {
    my ($c) = grep { $_->{id} eq $g } @{ ChatChats::api(alice => GET => "/api/chats")->{items} };
    my $one = ChatChats::api(alice => GET => "/api/chats/$g")->{chat};
    my $s = "$c->{lastMessage}{content}{text}/$c->{unreadCount}";
    my $t = "$one->{lastMessage}{content}{text}/$one->{unreadCount}";
    return $s eq $t ? $s : "$s but alone $t";
};
my @r = ($seen->());
# m1 is seq 1: read up to m11
ChatChats::api(alice => POST => "/api/chats/$g/read", { upToSeq => 11 });
push @r, $seen->();
# the last 40 deleted for me: the numbers near the last hold none I see
ChatChats::api(alice => DELETE => "/api/messages/$_") for @ids[40 .. 79];
push @r, $seen->();
# bob still sees them all
my ($b) = grep { $_->{id} eq $g } @{ ChatChats::api(bob => GET => "/api/chats")->{items} };
push @r, "bob:$b->{lastMessage}{content}{text}/$b->{unreadCount}";
$main::Got = join " ", @r;
ChatChats::dyn($block, as => "alice", request => "GET /api/chats");
--- response_body_filters eval
sub { "$main::Got\n" }
--- response_body
m80/80 m80/69 m40/29 bob:m80/0
--- error_code: 200
--- timeout: 60



=== TEST 23: an unread backlog past 200 numbers is counted exactly (my own left out), and after a read
--- init
ChatChats::setup();
my $g = ChatChats::api(alice => POST => "/api/chats/group",
    { name => "backlog", memberIds => [ $ChatChats::Id{bob} ] })->{chat}{id};
for my $i (1 .. 5) {
    ChatChats::api(alice => POST => "/api/messages",
        { chatId => $g, tempId => "mine-$i", type => "text", content => "a$i" });
}
for my $i (1 .. 230) {
    ChatChats::api(bob => POST => "/api/messages",
        { chatId => $g, tempId => "many-$i", type => "text", content => "b$i" });
}
my $unread = sub {
    my ($c) = grep { $_->{id} eq $g } @{ ChatChats::api(alice => GET => "/api/chats")->{items} };
    "$c->{lastMessage}{seq}:$c->{unreadCount}";
};
my @r = ($unread->());
ChatChats::api(alice => POST => "/api/chats/$g/read", { upToSeq => 100 });
push @r, $unread->();
$main::Got = join " ", @r;
ChatChats::dyn($block, as => "alice", request => "GET /api/chats");
--- response_body_filters eval
sub { "$main::Got\n" }
--- response_body
235:230 235:135
--- error_code: 200
--- timeout: 120



=== TEST 24: edit in the seed's form, {content: {type: "text", text}}: the same checks as the string; the answer and its history in the same shape
--- init
ChatChats::setup();
my $g = ChatChats::api(alice => POST => "/api/chats/group",
    { name => "seed edits", memberIds => [ $ChatChats::Id{bob} ] })->{chat}{id};
my $m = main::send_msg(alice => $g, "se1", text => "before");
my $e = ChatChats::api(alice => PUT => "/api/messages/$m->{id}",
    { content => { type => "text", text => "after" } })->{message};
$main::Got = join " ", map({ "$_=$e->{content}{$_}" } sort keys %{ $e->{content} }),
    map { my $c = $_->{content}; join ",", map { "$_=$c->{$_}" } sort keys %$c } @{ $e->{edits} };
my @cases = (
    [ { content => { type => "text", text => "" } }, qr/content.text must be 1 to 4096/ ],
    [ { content => { type => "text", text => "x" x 4097 } }, qr/content.text must be 1 to 4096/ ],
    [ { content => { type => "text", text => "a\x{1b}b" } }, qr/content.text has control characters/ ],
    [ { content => { type => "text" } }, qr/content.text is required/ ],
    [ { content => { type => "text", text => [ "x" ] } }, qr/content.text must be a string/ ],
    [ { content => { type => "image", mediaId => "0123456789abcdef01234567" } }, qr/content.type must be the message's type/ ],
    [ { content => { type => 1, text => "x" } }, qr/content.type must be a string/ ],
);
ChatChats::dyn($block, as => "alice",
    request => [ (map { "PUT /api/messages/$m->{id}\n" . JSON::PP::encode_json($_->[0]) } @cases),
                 "PUT /api/messages/$m->{id}\n{\"content\":{\"type\":\"text\",\"text\":\"\xc3\x28\"}}" ],
    error_code => [ (map { 400 } @cases), 400 ],
    response_body_like => [ (map { $_->[1] } @cases), qr/invalid_json/ ]);
--- response_body_filters eval
sub { $_[0] =~ /"error"/ ? "$main::Got\n" : $_[0] }
--- response_body eval
[ map { "text=after type=text text=before,type=text\n" } 1 .. 8 ]
