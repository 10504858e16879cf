# Group commit of messages: while a worker's message inserts are in the
# store (two at a time), the messages sent meanwhile wait and go together
# in one insert command.  With the store made slow (each command 0.3 s
# later, through a proxy), 30 sends at once are stored in a few commands
# (chat_message_insert_commands_total), each answered 201 with its own
# number, stored once, 1 to 30 without a hole, and delivered once to the
# other member's socket.  TEST 2: Redis behind the store (its counter set
# back, as after a restore from an older snapshot): the numbers a batch
# takes are already stored; the store refuses those messages one by one,
# each goes again alone, finds the number taken and takes the next free
# one: every message stored once, the numbers without a hole.

use Test::Nginx::Socket;
use ChatTest;
use ChatChats;
use ChatRT;
use DelayProxy;
use Time::HiRes qw(sleep);

our ($Got);

BEGIN {
    ChatChats::init("700");
}

# FerretDB behind a proxy that holds every command 0.3 s while $Slow exists
our $Slow = DelayProxy::slow_store(0.3);

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value("config", <<'_EOC_');
    location /api/ { chat_api; }
    location /ws { chat_ws; }
    location = /metrics { chat_metrics; }
    location = /t { return 200 "t"; }
_EOC_
    # no bound by time on the sends (t/098's subject): a burst whose
    # requests a loaded machine spaces past 125 ms is not refused here
    $block->set_value("http_config", ChatChats::slow_http_config()
                                     . "    chat_send_max_wait 0;\n");
    $block->set_value("request", "GET /t");
    $block->set_value("response_body_filters", sub { "$main::Got\n" });
    $block->set_value("timeout", 120);
});

sub commands { ChatChats::metric("chat_message_insert_commands_total") }

# 30 sends at once while the store is slow: [answers], commands used
sub slow_burst {
    my ($chat, $prefix, $n) = @_;
    my $before = main::commands();
    open my $f, '>', $main::Slow or die;
    close $f;
    my @a = ChatChats::burst(alice => $chat, $prefix, $n);
    unlink $main::Slow;
    return (\@a, main::commands() - $before);
}

# what a chat holds: "n:<count> seqs:<ok|list> temps:<ok|dups>"
sub stored {
    my ($chat, $n) = @_;
    my @all;
    my $after = 0;
    for (;;) {
        my $page = ChatChats::api(alice => GET =>
            "/api/chats/$chat/messages?after=$after&limit=100")->{items};
        last unless @$page;
        push @all, @$page;
        $after = $page->[-1]{seq};
    }
    my @seq = map { $_->{seq} } @all;
    my %temp;
    $temp{ $_->{tempId} // "" }++ for @all;
    return "n:" . @all,
           "seqs:" . ("@seq" eq join(" ", 1 .. $n) ? "1-$n" : "@seq"),
           "temps:" . ((grep { $_ > 1 } values %temp) ? "dups" : "once");
}

# the answers: statuses, and whether their numbers are all different
sub answers {
    my ($a) = @_;
    my (%st, %seq);
    $st{ $_->[0] }++ for @$a;
    $seq{ $_->[2]{message}{seq} // "none" }++ for @$a;
    return "answers:" . join(",", map { "$_=$st{$_}" } sort keys %st),
           "numbers:" . (keys %seq == @$a && !$seq{none} ? "distinct"
                         : join(",", sort keys %seq));
}

# new_message events on $s until $n came or 10 s of quiet
sub delivered {
    my ($s, $n) = @_;
    my %got;
    while (keys %got < $n) {
        my $e = ChatRT::next_event($s, 10) or last;
        $got{ $e->{data}{message}{id} }++ if $e->{event} eq "new_message";
    }
    return "delivered:" . keys(%got)
           . ((grep { $_ > 1 } values %got) ? ",repeated" : ",once");
}

# a slow store of its own: a reload between the blocks adds nothing
if ($ENV{TEST_NGINX_USE_HUP}) {
    plan skip_all => "a slow store of its own: nothing for the reload pass";
} else {
    plan 'no_plan';
}

no_shuffle();
run_tests();

__DATA__

=== TEST 1: 30 sends at once to a slow store: a few insert commands, each message stored once, numbered 1-30, delivered once
--- init
ChatChats::setup();
my @r;
my $chat = ChatChats::api(alice => POST => "/api/chats/private",
                          { userId => $ChatChats::Id{bob} })->{chat}{id};
my $bob = ChatRT::connect("bob");
my ($a, $cmds) = main::slow_burst($chat, "gc", 30);
warn "group commit: 30 messages in $cmds insert commands\n";
push @r, main::answers($a),
         "commands:" . ($cmds >= 2 && $cmds <= 10 ? "fewer" : $cmds),
         main::delivered($bob, 30), main::stored($chat, 30);
close $bob;
$main::Got = "@r";
--- response_body
answers:201=30 numbers:distinct commands:fewer delivered:30,once n:30 seqs:1-30 temps:once
--- no_error_log
[error]
[alert]
[emerg]



=== TEST 2: Redis's counter behind the store: the batch's taken numbers refused one by one, each message stored once at the next free number
--- init
ChatChats::setup();
my @r;
my $chat = ChatChats::api(alice => POST => "/api/chats/private",
                          { userId => $ChatChats::Id{carol} })->{chat}{id};
for my $i (1 .. 5) {
    ChatChats::api(alice => POST => "/api/messages",
        { chatId => $chat, tempId => "before-$i", type => "text",
          content => "before $i" });
}
# as after Redis came back from an older snapshot
system("redis-cli", "-p", $ENV{TEST_NGINX_REDIS_PORT}, "SET",
       "seq:{$chat}", "2") == 0 or die "redis-cli";
my $carol = ChatRT::connect("carol");
my ($a) = main::slow_burst($chat, "behind", 10);
push @r, main::answers($a),
         "above:" . ((grep { ($_->[2]{message}{seq} // 0) <= 5 } @$a)
                     ? "no" : "yes"),
         main::delivered($carol, 10), main::stored($chat, 15);
close $carol;
$main::Got = "@r";
--- response_body
answers:201=10 numbers:distinct above:yes delivered:10,once n:15 seqs:1-15 temps:once
--- no_error_log
[error]
[alert]
[emerg]
