//! The SELECT of a segment written straight from the planner's parts
//! ([`SqlSelect`]), without a `LogicalPlan`: the same statement the
//! unparser makes of the plan (a test requires the same text), at a
//! fraction of the cost, for the segments the planner gives parts for.
//! Expressions still go through the unparser, so every dialect spells
//! them as it does in the plan's SQL.

use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Column, Result as DfResult};
use datafusion::logical_expr::Expr;
use datafusion::sql::sqlparser::ast::{self, Ident, OrderByKind, SetExpr};
use datafusion::sql::unparser::ast::{
    DerivedRelationBuilder, QueryBuilder, RelationBuilder, SelectBuilder, TableRelationBuilder,
    TableWithJoinsBuilder,
};
use datafusion::sql::unparser::dialect::Dialect as _;
use datafusion::sql::unparser::Unparser;

use super::Target;
use crate::plan::{SqlLookup, SqlSelect, SqlUniverse};

/// Writes [`SqlSelect`]s for one target.
pub(super) struct Writer<'a> {
    pub(super) target: &'a Target,
    pub(super) unparser: Unparser<'a>,
}

impl Writer<'_> {
    /// The statement of a segment, as `Unparser::plan_to_sql` writes its
    /// plan.
    pub(super) fn statement(&self, select: SqlSelect) -> DfResult<ast::Statement> {
        let SqlSelect {
            lookups,
            filter,
            aggregates,
            predicate,
            universe,
        } = select;
        let counts = self.counts(lookups, filter, aggregates)?;
        let mut outer = SelectBuilder::default();
        let mut from = TableWithJoinsBuilder::default();
        let id = match &universe {
            SqlUniverse::Joined { until_as_of } => {
                from.relation(self.derived(self.universe(until_as_of.clone())?, "universe"));
                let on = binary(
                    self.column("universe", "profile_id")?,
                    ast::BinaryOperator::Eq,
                    self.column("counts", "profile_id")?,
                );
                from.push_join(ast::Join {
                    relation: self
                        .derived(counts, "counts")
                        .build()?
                        .ok_or_else(missing)?,
                    global: false,
                    join_operator: ast::JoinOperator::LeftOuter(ast::JoinConstraint::On(on)),
                });
                "universe"
            }
            SqlUniverse::Exists | SqlUniverse::Counted => {
                from.relation(self.derived(counts, "counts"));
                "counts"
            }
        };
        outer.push_from(from);
        outer.selection(Some(self.unparser.expr_to_sql(&predicate)?));
        if let SqlUniverse::Exists = universe {
            outer.selection(Some(self.exists_in_profiles()?));
        }
        outer.projection(vec![ast::SelectItem::ExprWithAlias {
            expr: self.column(id, "profile_id")?,
            alias: self.ident("profile_id"),
        }]);
        let mut query = QueryBuilder::default();
        query.body(Box::new(SetExpr::Select(Box::new(outer.build()?))));
        query.order_by(OrderByKind::Expressions(vec![self
            .unparser
            .sort_to_sql(&col_unqualified("profile_id").sort(true, false))?]));
        Ok(ast::Statement::Query(Box::new(query.build()?)))
    }

    /// `SELECT <aggregates>, events.profile_id FROM events LEFT JOIN
    /// <lookups> WHERE <filter> GROUP BY events.profile_id`.
    fn counts(
        &self,
        lookups: Vec<SqlLookup>,
        filter: Expr,
        aggregates: Vec<Expr>,
    ) -> DfResult<ast::Query> {
        let mut select = SelectBuilder::default();
        let mut from = TableWithJoinsBuilder::default();
        from.relation(self.table("events"));
        for lookup in lookups {
            let on = binary(
                self.column("events", lookup.joined_on)?,
                ast::BinaryOperator::Eq,
                self.column(&lookup.alias, "id")?,
            );
            let alias = lookup.alias.clone();
            from.push_join(ast::Join {
                relation: self
                    .derived(self.lookup(lookup)?, &alias)
                    .build()?
                    .ok_or_else(missing)?,
                global: false,
                join_operator: ast::JoinOperator::LeftOuter(ast::JoinConstraint::On(on)),
            });
        }
        select.push_from(from);
        select.selection(Some(self.expr(filter, "events")?));
        let id = self.column("events", "profile_id")?;
        let mut projection = aggregates
            .into_iter()
            .map(|a| self.item(a, "events"))
            .collect::<DfResult<Vec<_>>>()?;
        projection.push(ast::SelectItem::UnnamedExpr(id.clone()));
        select.projection(projection);
        select.group_by(ast::GroupByExpr::Expressions(vec![id], vec![]));
        query(select)
    }

    /// `SELECT DISTINCT <table>.<id> AS id FROM <table> WHERE <filter>`.
    fn lookup(&self, lookup: SqlLookup) -> DfResult<ast::Query> {
        let mut select = SelectBuilder::default();
        select.distinct(Some(ast::Distinct::Distinct));
        let mut from = TableWithJoinsBuilder::default();
        from.relation(self.table(lookup.table));
        select.push_from(from);
        select.selection(Some(self.expr(lookup.filter, lookup.table)?));
        select.projection(vec![ast::SelectItem::ExprWithAlias {
            expr: self.column(lookup.table, lookup.id)?,
            alias: self.ident("id"),
        }]);
        query(select)
    }

    /// The ids of the universe: the profiles table's, or with `until_as_of`
    /// those of the events up to as_of.
    fn universe(&self, until_as_of: Option<Expr>) -> DfResult<ast::Query> {
        let table = if until_as_of.is_some() {
            "events"
        } else {
            "profiles"
        };
        let mut select = SelectBuilder::default();
        let mut from = TableWithJoinsBuilder::default();
        from.relation(self.table(table));
        select.push_from(from);
        let id = self.column(table, "profile_id")?;
        select.selection(Some(ast::Expr::IsNotNull(Box::new(id.clone()))));
        if let Some(until_as_of) = until_as_of {
            select.selection(Some(self.expr(until_as_of, table)?));
        }
        select.projection(vec![ast::SelectItem::UnnamedExpr(id.clone())]);
        select.group_by(ast::GroupByExpr::Expressions(vec![id], vec![]));
        query(select)
    }

    /// `EXISTS (SELECT 1 FROM (SELECT profiles.profile_id FROM profiles) AS
    /// universe WHERE counts.profile_id = universe.profile_id)`.
    fn exists_in_profiles(&self) -> DfResult<ast::Expr> {
        let mut profiles = SelectBuilder::default();
        let mut from = TableWithJoinsBuilder::default();
        from.relation(self.table("profiles"));
        profiles.push_from(from);
        profiles.projection(vec![ast::SelectItem::UnnamedExpr(
            self.column("profiles", "profile_id")?,
        )]);
        let mut exists = SelectBuilder::default();
        let mut from = TableWithJoinsBuilder::default();
        from.relation(self.derived(query(profiles)?, "universe"));
        exists.push_from(from);
        let same = Expr::Column(Column::new(Some("counts"), "profile_id"))
            .eq(Expr::Column(Column::new(Some("universe"), "profile_id")));
        exists.selection(Some(self.unparser.expr_to_sql(&same)?));
        exists.projection(vec![ast::SelectItem::UnnamedExpr(ast::Expr::value(
            ast::Value::Number("1".to_string(), false),
        ))]);
        Ok(ast::Expr::Exists {
            subquery: Box::new(query(exists)?),
            negated: false,
        })
    }

    /// An expression whose columns without a table are `table`'s.
    fn expr(&self, e: Expr, table: &str) -> DfResult<ast::Expr> {
        self.unparser.expr_to_sql(&qualified(e, table)?)
    }

    /// A SELECT item, `AS` its alias if it has one.
    fn item(&self, e: Expr, table: &str) -> DfResult<ast::SelectItem> {
        Ok(match e {
            Expr::Alias(alias) => ast::SelectItem::ExprWithAlias {
                expr: self.expr(*alias.expr, table)?,
                alias: self.ident(&alias.name),
            },
            e => ast::SelectItem::UnnamedExpr(self.expr(e, table)?),
        })
    }

    fn column(&self, table: &str, name: &str) -> DfResult<ast::Expr> {
        self.unparser
            .col_to_sql(&Column::new(Some(table.to_string()), name))
    }

    fn ident(&self, name: &str) -> Ident {
        let mut ident = Ident::new(name);
        ident.quote_style = self.target.identifier_quote_style(name);
        ident
    }

    fn table(&self, name: &str) -> RelationBuilder {
        let mut table = TableRelationBuilder::default();
        table.name(ast::ObjectName::from(vec![self.ident(name)]));
        let mut relation = RelationBuilder::default();
        relation.table(table);
        relation
    }

    fn derived(&self, subquery: ast::Query, alias: &str) -> RelationBuilder {
        let mut derived = DerivedRelationBuilder::default();
        derived
            .lateral(false)
            .subquery(Box::new(subquery))
            .alias(Some(ast::TableAlias {
                name: self.ident(alias),
                columns: vec![],
                explicit: true,
                at: None,
            }));
        let mut relation = RelationBuilder::default();
        relation.derived(derived);
        relation
    }
}

/// `e` with `table` on every column that has none.
fn qualified(e: Expr, table: &str) -> DfResult<Expr> {
    e.transform_up(|e| {
        Ok(match e {
            Expr::Column(Column {
                relation: None,
                name,
                spans,
            }) => Transformed::yes(Expr::Column(Column {
                relation: Some(table.into()),
                name,
                spans,
            })),
            e => Transformed::no(e),
        })
    })
    .map(|t| t.data)
}

fn query(select: SelectBuilder) -> DfResult<ast::Query> {
    let mut query = QueryBuilder::default();
    query.body(Box::new(SetExpr::Select(Box::new(select.build()?))));
    Ok(query.build()?)
}

fn binary(left: ast::Expr, op: ast::BinaryOperator, right: ast::Expr) -> ast::Expr {
    ast::Expr::BinaryOp {
        left: Box::new(left),
        op,
        right: Box::new(right),
    }
}

fn col_unqualified(name: &str) -> Expr {
    Expr::Column(Column::new_unqualified(name))
}

fn missing() -> datafusion::error::DataFusionError {
    datafusion::error::DataFusionError::Internal("a derived table without a query".into())
}
