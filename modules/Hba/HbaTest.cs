using System.Net;
using PgState.Engine.Resources;

namespace PgState.Modules.Hba;

/// <summary>pgstate hba test: which rule of the desired and of the live pg_hba.conf would match a connection.</summary>
internal static class HbaTest
{
    public static async Task<int> RunAsync(VerbContext context, CancellationToken cancellationToken)
    {
        var type = context.String("type") ?? "host";
        var addressText = context.String("address");
        IPAddress? ip = null;
        if (addressText is not null && !IPAddress.TryParse(addressText, out ip))
        {
            context.Error.WriteLine($"pgstate: error: --address {addressText} is not an IP address");
            return 1;
        }
        if (type == "host" && ip is null)
        {
            context.Error.WriteLine("pgstate: error: a host connection needs --address");
            return 1;
        }
        var connection = new HbaConnection(type, context.String("database")!, context.String("user")!, ip, context.Flag("ssl"));
        foreach (var host in context.Hosts)
        {
            if (host.Modules.OfType<BoundHba>().FirstOrDefault() is not { } hba)
            {
                context.Error.WriteLine($"pgstate: host '{host.Host.Name}' has no spec.hba: nothing to test");
                continue;
            }
            var session = await context.ConnectAsync(host, cancellationToken);
            await using var _ = session as IAsyncDisposable;
            var path = hba.PathFor(session.Server);
            // Rules in the order the server reads them: pg_hba.conf and (16+) the files it includes.
            var live = BoundHba.LoadSet(path, session.Server.Major);
            var target = hba.TargetIn(live);
            var desired = live.With(target.Path, hba.Candidate(target.File), session.Server.Major);
            var rendered = target.IsMain ? "the rendered pg_hba.conf" : $"the rendered {target.Path}";
            context.Output.WriteLine($"host \"{host.Host.Name}\": {connection.Describe()}");
            context.Output.WriteLine("  desired: " + Describe(desired.Rules, connection, rendered, hba.Section.Rules));
            context.Output.WriteLine("  live:    " + Describe(live.Rules, connection, path, null));
        }
        return 0;
    }

    private static string Describe(IReadOnlyList<HbaFileRule> rules, HbaConnection connection, string where, IReadOnlyList<HbaRule>? managed)
    {
        var match = HbaMatcher.FirstMatch([.. rules.Select(r => r.Rule)], connection);
        if (match is not { } m)
        {
            return $"no rule in {where} matches: the connection is rejected";
        }
        var rule = rules[m];
        var index = managed is null ? -1 : managed.ToList().FindIndex(r => r.Key == rule.Rule.Key);
        var address = index >= 0 ? $"hba.rule[{index}], " : "";
        var verdict = rule.Rule.Method == "reject" ? "the connection is rejected" : $"method {rule.Rule.Method}";
        return $"{address}line {rule.Line} of {rule.File ?? where}: {rule.Rule.Describe()} → {verdict}";
    }
}
